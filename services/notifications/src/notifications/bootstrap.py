"""Composition root of the notifications service."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from diaspora_events.outbox import OutboxWriter
from diaspora_events.shredding import EventKeySettings, event_key_settings
from diaspora_service.db import make_engine, make_session_factory
from notifications import SERVICE_NAME
from notifications.adapters.orm import outbox
from notifications.settings import NotificationsSettings


@dataclass
class Notifications:
    settings: NotificationsSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    outbox: OutboxWriter
    # Crypto-shredding: the key settings (the worker's consumer builds its caching
    # resolver from them); the writer seals audit entries with no key cache.
    key_settings: EventKeySettings | None = None

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
    key_settings = event_key_settings("NOTIFICATIONS")
    return Notifications(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        outbox=OutboxWriter(
            outbox, source=settings.event_source, keys=key_settings.resolver(SERVICE_NAME, ttl=0.0)
        ),
        key_settings=key_settings,
    )
