"""Async SQLAlchemy engine and sessions."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


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
