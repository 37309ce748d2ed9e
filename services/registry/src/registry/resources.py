"""The registry's handles, built once by :mod:`registry.bootstrap` and handed to features."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from diaspora_events.outbox import OutboxWriter
from diaspora_identity.audit import AuditTrail
from diaspora_identity.http import Identity
from registry.crypto import DocumentCipher
from registry.person_keys import PersonKeys
from registry.settings import RegistrySettings

# An erasure step is awaited inside the erasure transaction, before the member row is
# deleted, with the session and the member id, and deletes or anonymises what its part of
# the registry keeps on the person (duplicates review, association links, read models not
# fed by events...). Tables with a foreign key to members.id ON DELETE CASCADE need none.
ErasureStep = Callable[[AsyncSession, UUID], Awaitable[None]]
# A merge step is awaited inside the merge transaction with (session, absorbed id, survivor
# id), before the absorbed member is deleted: parts of the registry that link to members
# (association membership...) move their links to the survivor.
MergeStep = Callable[[AsyncSession, UUID, UUID], Awaitable[None]]


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
    # Built by the bootstrap, in the order they run: what an erasure or a merge of
    # duplicates must also do in the other features (in the same transaction).
    erasure_steps: list[ErasureStep] = field(default_factory=list)
    merge_steps: list[MergeStep] = field(default_factory=list)

    async def database_ready(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def close(self) -> None:
        await self.identity.aclose()
        await self.engine.dispose()
