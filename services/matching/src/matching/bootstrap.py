"""Composition root: settings, database, outbox and identity, wired once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from diaspora_events.outbox import OutboxWriter
from diaspora_events.shredding import EventKeySettings, event_key_settings
from diaspora_identity.http import Identity
from diaspora_service.db import make_engine, make_session_factory
from matching import SERVICE_NAME
from matching.adapters.orm import outbox
from matching.settings import MatchingSettings


@dataclass
class Matching:
    settings: MatchingSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    outbox: OutboxWriter
    identity: Identity
    # Crypto-shredding: the key settings and the writer's keys (no cache: a request's
    # keys leave memory with it); consumers build their own caching resolver.
    key_settings: EventKeySettings | None = None

    async def database_ready(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def close(self) -> None:
        await self.identity.aclose()
        await self.engine.dispose()


def bootstrap(settings: MatchingSettings | None = None) -> Matching:
    settings = settings or MatchingSettings()
    engine = make_engine(settings.async_database_url)
    key_settings = event_key_settings("MATCHING")
    return Matching(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        outbox=OutboxWriter(
            outbox, source=settings.event_source, keys=key_settings.resolver(SERVICE_NAME, ttl=0.0)
        ),
        identity=Identity.from_settings(settings),
        key_settings=key_settings,
    )
