"""Composition root of the notifications service."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from diaspora_events.outbox import OutboxWriter
from diaspora_service.db import make_engine, make_session_factory
from notifications.adapters.orm import outbox
from notifications.settings import NotificationsSettings


@dataclass
class Notifications:
    settings: NotificationsSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    outbox: OutboxWriter

    async def database_ready(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def close(self) -> None:
        await self.engine.dispose()


def bootstrap(settings: NotificationsSettings | None = None) -> Notifications:
    settings = settings or NotificationsSettings()
    engine = make_engine(
        settings.async_database_url, pool_size=settings.email_senders + settings.sms_senders + 8
    )
    return Notifications(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        outbox=OutboxWriter(outbox, source=settings.event_source),
    )
