"""retry_until_reachable: a start-up job retried with doubling waits while the database is
unreachable, and any other error raised at once (no database needed)."""

from __future__ import annotations

import itertools
import time

import pytest

from diaspora_service.db import retry_until_reachable


async def test_retried_with_doubling_waits_while_the_database_is_unreachable() -> None:
    calls: list[float] = []

    async def job() -> None:
        calls.append(time.monotonic())
        if len(calls) < 4:
            raise ConnectionError("database unreachable")

    await retry_until_reachable("test", job, first_delay=0.1, max_delay=0.15)
    assert len(calls) == 4
    waits = [b - a for a, b in itertools.pairwise(calls)]
    # 0.1, then doubled (0.2) but capped at 0.15, and again 0.15 (not 0.4).
    for wait, expected in zip(waits, (0.1, 0.15, 0.15), strict=True):
        assert wait >= expected * 0.9, waits
    assert waits[2] < 0.35, waits


async def test_another_error_is_raised_at_once() -> None:
    calls = 0

    async def job() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError, match="a bug"):
        await retry_until_reachable("test", job, first_delay=0.01)
    assert calls == 1
