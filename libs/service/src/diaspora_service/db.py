"""Async SQLAlchemy engine and sessions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from sqlalchemy import exc as sql_errors
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

log = structlog.get_logger(__name__)


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    # hide_parameters: SQL errors reach logs and dead letters; values may be personal data.
    # No pool_pre_ping: it costs a round trip on every checkout (about a tenth of the
    # notifications worker's time). After a database restart the first statement on a
    # dead connection fails instead; SQLAlchemy then invalidates the whole pool, and
    # the caller's own retry (consumer retries, relay and sender loops) or the client's
    # (HTTP 5xx) goes through on a fresh connection.
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=10, pool_pre_ping=False, hide_parameters=True
    )


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


# What an unreachable or overloaded database raises (the API answers these with 503).
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    sql_errors.TimeoutError,
    sql_errors.OperationalError,
    sql_errors.InterfaceError,
    ConnectionError,
)


async def retry_until_reachable(
    name: str,
    job: Callable[[], Awaitable[object]],
    *,
    first_delay: float = 1.0,
    max_delay: float = 30.0,
) -> None:
    """Run ``job`` once, retrying with backoff while the database is unreachable.

    For start-up chores of an API (re-deriving data after reference data changed):
    run as a background task, they let the process start and report "not ready"
    while the database is down, instead of failing to start at all.
    """

    def deferred(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        retry_in = state.next_action.sleep if state.next_action else None
        log.warning("startup_job_deferred", job=name, error=type(error).__name__, retry_in=retry_in)

    # first_delay, then doubling up to max_delay, for as long as the database is down;
    # any other error is raised at once.
    await AsyncRetrying(
        retry=retry_if_exception_type(UNAVAILABLE_ERRORS),
        wait=wait_exponential(multiplier=first_delay, max=max_delay),
        before_sleep=deferred,
        reraise=True,
    )(job)
