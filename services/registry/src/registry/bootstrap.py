"""Composition root: settings, database, outbox, identity and audit, wired once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from diaspora_events.outbox import OutboxWriter
from diaspora_identity.audit import AuditTrail
from diaspora_identity.http import Identity
from diaspora_service.db import make_engine, make_session_factory
from registry.adapters.orm import audit_log, outbox
from registry.crypto import DocumentCipher
from registry.service import audit_event
from registry.settings import RegistrySettings


@dataclass
class Registry:
    settings: RegistrySettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    outbox: OutboxWriter
    identity: Identity
    audit: AuditTrail
    # Encrypts nationality document numbers at rest (keys from the settings).
    cipher: DocumentCipher

    async def database_ready(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def close(self) -> None:
        await self.identity.aclose()
        await self.engine.dispose()


def bootstrap(settings: RegistrySettings | None = None) -> Registry:
    settings = settings or RegistrySettings()
    engine = make_engine(settings.async_database_url)
    writer = OutboxWriter(outbox, source=settings.event_source)
    return Registry(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        outbox=writer,
        identity=Identity.from_settings(settings),
        audit=AuditTrail(audit_log, writer, audit_event),
        cipher=DocumentCipher.from_settings(settings.document_keys, settings.document_key_id),
    )
