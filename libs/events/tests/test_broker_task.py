"""broker_task: a broker that fails to start is undone and tried again, with a growing
wait, until it starts or the process stops (no Kafka needed: a stand-in broker)."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from diaspora_devstack.testing import wait_until
from diaspora_events.runtime import broker_task


class FlakyBroker:
    """Fails to start ``failures`` times, then starts; records every call."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[tuple[str, float]] = []
        self.started = asyncio.Event()
        self.attempted = asyncio.Event()

    async def start(self) -> None:
        self.calls.append(("start", time.monotonic()))
        self.attempted.set()
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("broker unreachable")
        self.started.set()

    async def stop(self) -> None:
        self.calls.append(("stop", time.monotonic()))


async def test_a_failed_start_is_undone_and_retried_with_growing_waits() -> None:
    broker = FlakyBroker(failures=3)
    stop = asyncio.Event()
    task = asyncio.create_task(broker_task(broker, retry_after=0.05)(stop))  # type: ignore[arg-type]
    await asyncio.wait_for(broker.started.wait(), timeout=10)
    starts = [at for name, at in broker.calls if name == "start"]
    assert [name for name, _ in broker.calls] == [
        "start",
        "stop",
        "start",
        "stop",
        "start",
        "stop",
        "start",
    ]
    waits = [b - a for a, b in itertools.pairwise(starts)]
    # retry_after x attempt: 0.05, 0.10, 0.15 s (allowing for a slow machine).
    for wait, expected in zip(waits, (0.05, 0.10, 0.15), strict=True):
        assert wait >= expected * 0.9, waits
    assert waits[2] > waits[0]

    stop.set()
    await asyncio.wait_for(task, timeout=10)
    assert broker.calls[-1][0] == "stop"  # stopped at the end


async def test_a_stop_ends_the_wait_at_once_without_another_attempt() -> None:
    broker = FlakyBroker(failures=1_000)
    stop = asyncio.Event()
    # retry_after 100 s: the first wait would be 30 s (the cap); the stop ends it.
    task = asyncio.create_task(broker_task(broker, retry_after=100)(stop))  # type: ignore[arg-type]
    await asyncio.wait_for(broker.attempted.wait(), timeout=10)
    # The failed start undone: from there the task waits before its second attempt.
    await wait_until(lambda: len(broker.calls) == 2, timeout=10, message="the start undone")
    began = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert time.monotonic() - began < 5
    # One attempt, its undo, and the final stop: no further attempt once stopped.
    assert [name for name, _ in broker.calls] == ["start", "stop", "stop"]


async def test_nothing_is_started_when_stopped_before_the_first_attempt() -> None:
    broker: Any = FlakyBroker(failures=0)
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(broker_task(broker)(stop), timeout=5)
    assert [name for name, _ in broker.calls] == ["stop"]
