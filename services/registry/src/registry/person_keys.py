"""The ``person_keys`` table: one data key (DEK) per person, wrapped by the KEK.

A row is created the first time an event about the person is sealed (registration,
or the first key request for an id the registry had not keyed yet). Erasure turns it
into a tombstone (``wrapped_dek`` and ``kek_id`` NULL, ``destroyed_at`` set) in the
erasure's transaction (:func:`registry.bootstrap.erasure_steps`): from its commit, no
service can obtain the key again, and an event later written about the person is
sealed with a throwaway key.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Collection, Mapping
from typing import Any
from uuid import UUID

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    LargeBinary,
    Table,
    Text,
    Uuid,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.shredding import KeyEncryptionKey, KeyResolver, new_data_key
from registry.tables import metadata

person_keys = Table(
    "person_keys",
    metadata,
    Column("subject_id", Uuid, primary_key=True, comment="Member (or other subject) id."),
    Column("wrapped_dek", LargeBinary, comment="The DEK wrapped by the KEK; NULL once destroyed."),
    Column("kek_id", Text, comment="Which key-encryption key wrapped it."),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("destroyed_at", DateTime(timezone=True), comment="Erasure: the key is gone."),
    CheckConstraint(
        "(wrapped_dek IS NULL) = (destroyed_at IS NOT NULL)"
        " AND (wrapped_dek IS NULL) = (kek_id IS NULL)",
        name="person_keys_live_or_destroyed",
    ),
)


class PersonKeys:
    """The registry's key store, as a :class:`~diaspora_events.shredding.DataKeySource`
    (the outbox writer's) and as the key endpoint's back end.

    Unwrapped DEKs are kept in memory by their *wrapped* bytes (a few minutes, bounded),
    so that a Vault KEK is not asked for every event: every lookup still reads the row,
    so a destroyed key is never served from memory.
    """

    def __init__(
        self,
        kek: KeyEncryptionKey,
        sessions: async_sessionmaker[AsyncSession],
        *,
        cache_size: int = 10_000,
        cache_ttl: float = 300.0,
    ) -> None:
        self.kek = kek
        self._sessions = sessions
        self._cache: OrderedDict[bytes, tuple[float, bytes]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_ttl = cache_ttl

    async def data_keys(
        self, subjects: Collection[UUID], session: Any = None
    ) -> dict[UUID, bytes | None]:
        """Each subject's DEK (created if it has none yet); None if it was destroyed."""
        if not subjects:
            return {}
        if session is None:
            async with self._sessions() as own, own.begin():
                return await self._get_or_create(own, list(set(subjects)))
        return await self._get_or_create(session, list(set(subjects)))

    async def existing_keys(self, subjects: Collection[UUID]) -> dict[UUID, bytes | None]:
        """The DEKs of the subjects that have one; None for destroyed or unknown ones
        (the registry's own consumers: they never create keys)."""
        async with self._sessions() as session:
            rows = await self._rows(session, list(set(subjects)))
        return await self._unwrap_rows(rows, subjects)

    async def _rows(self, session: AsyncSession, subjects: list[UUID]) -> dict[UUID, bytes | None]:
        result = await session.execute(
            select(person_keys.c.subject_id, person_keys.c.wrapped_dek).where(
                person_keys.c.subject_id.in_(subjects)
            )
        )
        return {row[0]: (bytes(row[1]) if row[1] is not None else None) for row in result}

    async def _get_or_create(
        self, session: AsyncSession, subjects: list[UUID]
    ) -> dict[UUID, bytes | None]:
        rows = await self._rows(session, subjects)
        missing = [s for s in subjects if s not in rows]
        if missing:
            deks = [new_data_key() for _ in missing]
            wrapped = await self.kek.wrap(deks)
            created = (
                await session.execute(
                    insert(person_keys)
                    .values(
                        [
                            {"subject_id": s, "wrapped_dek": w, "kek_id": self.kek.kek_id}
                            for s, w in zip(missing, wrapped, strict=True)
                        ]
                    )
                    .on_conflict_do_nothing()
                    .returning(person_keys.c.subject_id)
                )
            ).scalars()
            made = set(created)
            now = time.monotonic()
            for subject, dek, wrap in zip(missing, deks, wrapped, strict=True):
                if subject in made:
                    rows[subject] = wrap
                    self._remember(wrap, dek, now)
            raced = [s for s in missing if s not in made]
            if raced:  # created meanwhile by another transaction
                rows.update(await self._rows(session, raced))
        return await self._unwrap_rows(rows, subjects)

    async def _unwrap_rows(
        self, rows: Mapping[UUID, bytes | None], subjects: Collection[UUID]
    ) -> dict[UUID, bytes | None]:
        now = time.monotonic()
        found: dict[UUID, bytes | None] = {}
        to_unwrap: list[tuple[UUID, bytes]] = []
        for subject in subjects:
            wrapped = rows.get(subject)
            if wrapped is None:
                found[subject] = None
                continue
            entry = self._cache.get(wrapped)
            if entry is not None and entry[0] > now:
                found[subject] = entry[1]
            else:
                to_unwrap.append((subject, wrapped))
        if to_unwrap:
            deks = await self.kek.unwrap([w for _, w in to_unwrap])
            for (subject, wrapped), dek in zip(to_unwrap, deks, strict=True):
                self._remember(wrapped, dek, now)
                found[subject] = dek
        return found

    def _remember(self, wrapped: bytes, dek: bytes, now: float) -> None:
        self._cache[wrapped] = (now + self._cache_ttl, dek)
        self._cache.move_to_end(wrapped)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def resolver(self) -> KeyResolver:
        """A consumer-side resolver reading this store directly (the registry worker),
        caching as long and as much as this store (``REGISTRY_EVENT_KEYS_CACHE_*``)."""
        return KeyResolver(self.existing_keys, ttl=self._cache_ttl, max_entries=self._cache_size)


async def destroy_key(session: AsyncSession, member_id: UUID) -> None:
    """Erasure step: the person's DEK is destroyed (a tombstone stays, so that no key is
    ever created for them again)."""
    statement = insert(person_keys).values(
        subject_id=member_id, wrapped_dek=None, kek_id=None, destroyed_at=func.now()
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[person_keys.c.subject_id],
            set_={"wrapped_dek": None, "kek_id": None, "destroyed_at": func.now()},
        )
    )
