"""diaspora_events.runtime.every: the periodic jobs of the workers."""

from __future__ import annotations

import asyncio

import pytest

from diaspora_events.runtime import every


async def test_a_job_runs_at_start_then_each_interval_and_a_stop_ends_the_wait() -> None:
    runs: list[float] = []
    loop = asyncio.get_running_loop()
    third = asyncio.Event()

    async def job() -> None:
        runs.append(loop.time())
        if len(runs) == 3:
            third.set()

    stop = asyncio.Event()
    task = asyncio.create_task(every(0.05, job)(stop))
    await asyncio.wait_for(third.wait(), 5)
    assert runs[1] - runs[0] >= 0.045
    assert runs[2] - runs[1] >= 0.045
    # A long interval: the stop must not wait for it.
    slow_stop = asyncio.Event()
    slow_runs: list[int] = []
    slow_ran = asyncio.Event()

    async def slow_job() -> None:
        slow_runs.append(1)
        slow_ran.set()

    slow = asyncio.create_task(every(3600, slow_job)(slow_stop))
    await asyncio.wait_for(slow_ran.wait(), 5)
    stop.set()
    slow_stop.set()
    await asyncio.wait_for(asyncio.gather(task, slow), 2)
    assert slow_runs == [1]


async def test_a_failing_job_fails_the_task() -> None:
    async def job() -> None:
        raise RuntimeError("database gone")

    with pytest.raises(RuntimeError, match="database gone"):
        await asyncio.wait_for(every(0.01, job)(asyncio.Event()), 2)
