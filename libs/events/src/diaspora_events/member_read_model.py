"""A service's read model of registry members, fed by ``registry.members`` only.

Services that need the people the registry knows (consular's applicants, returnees'
people) keep a table of their own columns, filled from the member events; no service
reads another's database. What is the same for every such read model lives here:

- ``MemberReadModel``: the table, the ``removed_*`` table and the service's mapping of a
  profile snapshot to a row; ``apply`` keeps a snapshot only if it is at least as recent
  as the one kept (``source_time``) and never for a member erased or merged away
  (a row in the ``removed_*`` table); ``forget`` and ``record_removed`` end a person.
- ``build_consumer``: the consumer of every ``registry.members`` event type. The five
  snapshot events (registered, also in its early flat form without a profile, updated,
  confirmed, identity-verified, marked-stale) are applied if newer; erasure and merge run
  the service's steps (handed in by its ``bootstrap``), then forget the person and record
  the removed id, all in the handler's transaction. Idempotent: the inbox records each
  event id in that same transaction.

What stays in the service: its columns (``tables.py``), its snapshot and early-event
mappings, its reads of the table, and its erasure and merge steps.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import (
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    Uuid,
    bindparam,
    delete,
    exists,
    select,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.cloudevents import Envelope
from diaspora_events.consumer import DeadLetterSink, EventConsumer
from diaspora_events.contracts import (
    MemberConfirmedV1,
    MemberErasedV1,
    MemberIdentityVerifiedV1,
    MemberMarkedStaleV1,
    MemberMergedV1,
    MemberRegisteredV1,
    MemberUpdatedV1,
)
from diaspora_events.contracts.registry import MemberProfile
from diaspora_events.shredding import KeyResolver

log = structlog.get_logger(__name__)

Row = dict[str, Any]
# (member id, profile, event time) -> the service's row (with ``source_time``).
SnapshotRow = Callable[[UUID, MemberProfile, datetime], Row]
# An early ``registry.member.registered`` without a profile -> the service's row.
EarlyRow = Callable[[MemberRegisteredV1], Row]
# A feature's part of an erasure (session, member id).
EraseStep = Callable[[AsyncSession, UUID], Awaitable[None]]
# A feature's part of a merge (session, absorbed id, survivor id).
MergeStep = Callable[[AsyncSession, UUID, UUID], Awaitable[None]]


def removed_members_table(metadata: MetaData, name: str) -> Table:
    """Members erased or merged into another record: no late or replayed snapshot brings
    them back."""
    return Table(
        name,
        metadata,
        Column("member_id", Uuid, primary_key=True),
        Column("reason", String(16), nullable=False),
        Column("survivor_id", Uuid),
        Column("removed_at", DateTime(timezone=True), nullable=False),
    )


class MemberReadModel:
    """A read-model table of members (``member_id`` key, ``source_time`` and
    ``updated_at`` columns), its ``removed_*`` table, and the service's snapshot mapping.

    ``columns``: the columns a row gives (``member_id`` and ``source_time`` among them);
    ``updated_at`` follows ``source_time`` when a row is replaced."""

    def __init__(
        self,
        *,
        table: Table,
        removed: Table,
        columns: Sequence[str],
        snapshot_row: SnapshotRow,
    ) -> None:
        if "member_id" not in columns or "source_time" not in columns:
            raise ValueError("a member read model's columns include member_id and source_time")
        self.table = table
        self.removed = removed
        self.columns = tuple(columns)
        self.snapshot_row = snapshot_row
        # Built once (building a statement per event costs CPU).
        self._upsert = self._build_upsert()

    def _build_upsert(self) -> Any:
        table, columns = self.table, self.columns
        params = {c: bindparam(c, type_=table.c[c].type) for c in columns}
        removed = exists().where(self.removed.c.member_id == params["member_id"])
        statement = insert(table).from_select(
            list(columns), select(*(params[c] for c in columns)).where(~removed)
        )
        return statement.on_conflict_do_update(
            index_elements=[table.c.member_id],
            set_={
                **{c: statement.excluded[c] for c in columns if c != "member_id"},
                "updated_at": statement.excluded.source_time,
            },
            where=table.c.source_time <= statement.excluded.source_time,
        ).returning(table.c.member_id)

    async def apply(self, session: AsyncSession, row: Row) -> bool:
        """Keep the snapshot unless a newer one is kept or the member was removed."""
        return (await session.execute(self._upsert, row)).first() is not None

    async def apply_snapshot(
        self, session: AsyncSession, member_id: UUID, profile: MemberProfile, at: datetime
    ) -> bool:
        return await self.apply(session, self.snapshot_row(member_id, profile, at))

    async def record_removed(
        self,
        session: AsyncSession,
        member_id: UUID,
        *,
        reason: str,
        at: datetime,
        survivor_id: UUID | None = None,
    ) -> None:
        await session.execute(
            insert(self.removed)
            .values(member_id=member_id, reason=reason, removed_at=at, survivor_id=survivor_id)
            .on_conflict_do_nothing()
        )

    async def forget(self, session: AsyncSession, member_id: UUID) -> None:
        """The read model's row of the person goes (erasure, or absorbed by a merge)."""
        await session.execute(delete(self.table).where(self.table.c.member_id == member_id))


def build_consumer(
    model: MemberReadModel,
    *,
    name: str,
    early_row: EarlyRow,
    sessions: async_sessionmaker[AsyncSession],
    inbox: Table,
    dead_letters: DeadLetterSink,
    topic_prefix: str = "",
    keys: KeyResolver | None = None,
    erase_steps: Sequence[EraseStep] = (),
    merge_steps: Sequence[MergeStep] = (),
    log_noun: str = "member",
) -> EventConsumer:
    """The read model's consumer (group ``name``) of every ``registry.members`` event.

    ``erase_steps`` run, in order, before the person's row goes on erasure; ``merge_steps``
    before the absorbed record's row goes on a merge (the survivor's merged profile
    arrives as ``registry.member.updated``). ``log_noun`` names the person in the logs
    (``<noun>_erased``, ``<noun>_merged``)."""
    consumer = EventConsumer(
        name=name,
        session_factory=sessions,
        inbox=inbox,
        dead_letters=dead_letters,
        topic_prefix=topic_prefix,
        keys=keys,  # opens sealed personal fields (crypto-shredding)
    )

    @consumer.on(MemberRegisteredV1)
    async def registered(event: MemberRegisteredV1, session: AsyncSession, _: Envelope) -> None:
        if event.profile is not None:
            await model.apply_snapshot(session, event.member_id, event.profile, event.registered_at)
        else:
            await model.apply(session, early_row(event))

    @consumer.on(MemberUpdatedV1)
    async def updated(event: MemberUpdatedV1, session: AsyncSession, _: Envelope) -> None:
        await model.apply_snapshot(session, event.member_id, event.profile, event.updated_at)

    @consumer.on(MemberConfirmedV1)
    async def confirmed(event: MemberConfirmedV1, session: AsyncSession, _: Envelope) -> None:
        await model.apply_snapshot(session, event.member_id, event.profile, event.confirmed_at)

    @consumer.on(MemberIdentityVerifiedV1)
    async def identity_verified(
        event: MemberIdentityVerifiedV1, session: AsyncSession, _: Envelope
    ) -> None:
        await model.apply_snapshot(session, event.member_id, event.profile, event.verified_at)

    @consumer.on(MemberMarkedStaleV1)
    async def marked_stale(event: MemberMarkedStaleV1, session: AsyncSession, _: Envelope) -> None:
        await model.apply_snapshot(session, event.member_id, event.profile, event.marked_at)

    @consumer.on(MemberErasedV1)
    async def erased(event: MemberErasedV1, session: AsyncSession, _: Envelope) -> None:
        for step in erase_steps:
            await step(session, event.member_id)
        await model.forget(session, event.member_id)
        await model.record_removed(session, event.member_id, reason="erased", at=event.erased_at)
        log.info(f"{log_noun}_erased", consumer=name, member_id=str(event.member_id))

    @consumer.on(MemberMergedV1)
    async def merged(event: MemberMergedV1, session: AsyncSession, _: Envelope) -> None:
        for step in merge_steps:
            await step(session, event.member_id, event.survivor_id)
        await model.forget(session, event.member_id)
        await model.record_removed(
            session,
            event.member_id,
            reason="merged",
            at=event.merged_at,
            survivor_id=event.survivor_id,
        )
        log.info(f"{log_noun}_merged", consumer=name, member_id=str(event.member_id))

    return consumer
