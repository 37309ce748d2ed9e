"""The relay's wait between failed publish passes (no database or broker needed)."""

from __future__ import annotations

import pytest
from tenacity import AsyncRetrying, RetryCallState

from diaspora_events.outbox import publish_backoff


def wait_after(failures: int, max_backoff: float) -> float:
    state = RetryCallState(retry_object=AsyncRetrying(), fn=None, args=(), kwargs={})
    state.attempt_number = failures
    return publish_backoff(max_backoff)(state)


@pytest.mark.parametrize("failures", range(1, 12))
def test_the_wait_doubles_from_0_4_s_with_at_most_1_s_of_jitter(failures: int) -> None:
    base = 0.4 * 2 ** (failures - 1)
    for _ in range(50):
        wait = wait_after(failures, max_backoff=30.0)
        assert min(base, 30.0) <= wait <= min(base + 1.0, 30.0)


def test_the_wait_never_exceeds_the_cap() -> None:
    assert {wait_after(n, max_backoff=0.2) for n in range(1, 40)} == {0.2}
    assert max(wait_after(n, max_backoff=30.0) for n in range(1, 200)) == 30.0


def test_the_wait_is_jittered() -> None:
    # Relays of several services that lost the broker together do not all retry at once.
    waits = {wait_after(1, max_backoff=30.0) for _ in range(50)}
    assert len(waits) > 1
