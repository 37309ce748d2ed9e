"""Composition root: settings, database, outbox, identity and audit, wired once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from diaspora_events.outbox import OutboxWriter
from diaspora_events.shredding import event_key_settings
from diaspora_identity.audit import AuditTrail
from diaspora_identity.http import Identity
from diaspora_service.db import make_engine, make_session_factory
from registry.adapters.orm import audit_log, outbox
from registry.crypto import DocumentCipher
from registry.keys.store import PersonKeys, use_in_this_process
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
    # Persons' data keys (crypto-shredding); None when event encryption is off.
    keys: PersonKeys | None = None

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
    sessions = make_session_factory(engine)
    key_settings = event_key_settings("REGISTRY")
    keys = (
        PersonKeys(
            key_settings.kek(),
            sessions,
            cache_size=key_settings.event_keys_cache_size,
            cache_ttl=key_settings.event_keys_cache_ttl_seconds,
        )
        if key_settings.event_encryption
        else None
    )
    use_in_this_process(keys)
    writer = OutboxWriter(outbox, source=settings.event_source, keys=keys)
    return Registry(
        settings=settings,
        engine=engine,
        sessions=sessions,
        outbox=writer,
        identity=Identity.from_settings(settings),
        audit=AuditTrail(audit_log, writer, audit_event),
        cipher=DocumentCipher.from_settings(settings.document_keys, settings.document_key_id),
        keys=keys,
    )
