"""The notifications service's handles: settings, database, outbox, identity, event keys.

Built by ``bootstrap.bootstrap``; routes get them through ``deps``, consumers and
jobs from ``bootstrap``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from diaspora_events.outbox import OutboxWriter
from diaspora_events.shredding import EventKeySettings
from diaspora_identity.http import Identity
from notifications.settings import NotificationsSettings


@dataclass
class Notifications:
    settings: NotificationsSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    outbox: OutboxWriter
    identity: Identity
    # Crypto-shredding: the key settings (the worker's consumer builds its caching
    # resolver from them); the writer seals audit entries with no key cache.
    key_settings: EventKeySettings | None = None

    async def database_ready(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def close(self) -> None:
        await self.identity.aclose()
        await self.engine.dispose()
