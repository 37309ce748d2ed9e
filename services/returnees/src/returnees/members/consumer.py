"""The people read model's consumer of ``registry.members`` (group ``returnees``).

Handles every member event type the registry publishes: the five snapshot events
(registered, updated, confirmed, identity-verified, marked-stale) update the read model
if newer; erasure and merge remove the person's row for good, after the steps of the
features above (handed in by ``bootstrap``: e.g. the cases of an erased person, moved
to a merge's survivor). Idempotent: the inbox records each event id in the handler's
transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from uuid import UUID

import structlog
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
from diaspora_events.shredding import KeyResolver
from returnees.members import service as members
from returnees.tables import inbox

log = structlog.get_logger(__name__)

CONSUMER_NAME = "returnees"

EraseStep = Callable[[AsyncSession, UUID], Awaitable[None]]
MergeStep = Callable[[AsyncSession, UUID, UUID], Awaitable[None]]


def build_consumer(
    *,
    sessions: async_sessionmaker[AsyncSession],
    dead_letters: DeadLetterSink,
    topic_prefix: str = "",
    keys: KeyResolver | None = None,
    erase_steps: Sequence[EraseStep] = (),
    merge_steps: Sequence[MergeStep] = (),
) -> EventConsumer:
    consumer = EventConsumer(
        name=CONSUMER_NAME,
        session_factory=sessions,
        inbox=inbox,
        dead_letters=dead_letters,
        topic_prefix=topic_prefix,
        keys=keys,  # opens sealed personal fields (crypto-shredding)
    )

    @consumer.on(MemberRegisteredV1)
    async def registered(event: MemberRegisteredV1, session: AsyncSession, _: Envelope) -> None:
        if event.profile is not None:
            await members.apply_snapshot(
                session, event.member_id, event.profile, event.registered_at
            )
            return
        # An early registration: the flat fields.
        await members.apply(
            session,
            {
                "member_id": event.member_id,
                "given_name": event.given_name,
                "family_name": event.family_name,
                "email": event.email,
                "phone": event.phone,
                "preferred_language": event.preferred_language,
                "country_of_residence": event.country_of_residence.upper(),
                "source_time": event.registered_at,
            },
        )

    @consumer.on(MemberUpdatedV1)
    async def updated(event: MemberUpdatedV1, session: AsyncSession, _: Envelope) -> None:
        await members.apply_snapshot(session, event.member_id, event.profile, event.updated_at)

    @consumer.on(MemberConfirmedV1)
    async def confirmed(event: MemberConfirmedV1, session: AsyncSession, _: Envelope) -> None:
        await members.apply_snapshot(session, event.member_id, event.profile, event.confirmed_at)

    @consumer.on(MemberIdentityVerifiedV1)
    async def identity_verified(
        event: MemberIdentityVerifiedV1, session: AsyncSession, _: Envelope
    ) -> None:
        await members.apply_snapshot(session, event.member_id, event.profile, event.verified_at)

    @consumer.on(MemberMarkedStaleV1)
    async def marked_stale(event: MemberMarkedStaleV1, session: AsyncSession, _: Envelope) -> None:
        await members.apply_snapshot(session, event.member_id, event.profile, event.marked_at)

    @consumer.on(MemberErasedV1)
    async def erased(event: MemberErasedV1, session: AsyncSession, _: Envelope) -> None:
        for step in erase_steps:
            await step(session, event.member_id)
        await members.forget(session, event.member_id)
        await members.record_removed(session, event.member_id, reason="erased", at=event.erased_at)
        log.info("person_erased", member_id=str(event.member_id))

    @consumer.on(MemberMergedV1)
    async def merged(event: MemberMergedV1, session: AsyncSession, _: Envelope) -> None:
        # The absorbed record's cases follow the survivor (whose merged profile arrives
        # as registry.member.updated); its read-model row goes for good.
        for step in merge_steps:
            await step(session, event.member_id, event.survivor_id)
        await members.forget(session, event.member_id)
        await members.record_removed(
            session,
            event.member_id,
            reason="merged",
            at=event.merged_at,
            survivor_id=event.survivor_id,
        )
        log.info("person_merged", member_id=str(event.member_id))

    return consumer
