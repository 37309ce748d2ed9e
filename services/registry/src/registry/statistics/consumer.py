"""The read models' consumer (``registry-read-models``): the registry's own member events
applied to the statistics and search tables, idempotently (inbox in the same transaction).

Every member event but erasure and merge carries the whole profile, so each one simply
replaces what the read models hold of the member; the topic is compacted, so a new
consumer group (or an emptied read model) rebuilds from the start of the topic.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.cloudevents import Envelope
from diaspora_events.consumer import DeadLetterSink, EventConsumer
from diaspora_events.contracts.registry import (
    MemberConfirmedV1,
    MemberErasedV1,
    MemberIdentityVerifiedV1,
    MemberMarkedStaleV1,
    MemberMergedV1,
    MemberProfile,
    MemberRegisteredV1,
    MemberUpdatedV1,
)
from diaspora_events.shredding import KeyResolver
from diaspora_identity.jurisdictions import Jurisdictions, default_jurisdictions
from registry.statistics import projection
from registry.statistics import search_index as search
from registry.tables import inbox

CONSUMER_NAME = "registry-read-models"

log = structlog.get_logger(__name__)


def _early_profile(event: MemberRegisteredV1, jurisdictions: Jurisdictions) -> MemberProfile:
    """Events from before the snapshot was added: the flat fields are the profile."""
    return MemberProfile(
        given_name=event.given_name,
        family_name=event.family_name,
        date_of_birth=event.date_of_birth,
        email=event.email,
        phone=event.phone,
        preferred_language=event.preferred_language,
        country_of_residence=event.country_of_residence,
        embassy_id=jurisdictions.embassy_for(event.country_of_residence),
    )


async def apply(
    session: AsyncSession,
    member_id: UUID,
    profile: MemberProfile,
    *,
    as_of: datetime,
    require_consent: bool,
) -> None:
    """Both read models take the member's latest profile (unless the member was removed,
    or the event is older than what they hold: both are kept in step)."""
    if await projection.apply_profile(
        session, member_id, profile, as_of=as_of, require_consent=require_consent
    ):
        await search.index_member(session, member_id, profile, as_of=as_of)
    else:
        log.info("read_model_event_ignored", reason="removed member or older event")


async def remove(session: AsyncSession, member_id: UUID, *, reason: str) -> None:
    await projection.remove_member(session, member_id, reason=reason)
    await search.unindex_member(session, member_id)


def build_consumer(
    *,
    sessions: async_sessionmaker[AsyncSession],
    dead_letters: DeadLetterSink,
    topic_prefix: str = "",
    require_consent: bool = False,
    jurisdictions: Jurisdictions | None = None,
    keys: KeyResolver | None = None,
) -> EventConsumer:
    consumer = EventConsumer(
        name=CONSUMER_NAME,
        session_factory=sessions,
        inbox=inbox,
        dead_letters=dead_letters,
        topic_prefix=topic_prefix,
        keys=keys,
    )
    posts = jurisdictions or default_jurisdictions()

    @consumer.on(MemberRegisteredV1)
    async def registered(event: MemberRegisteredV1, session: AsyncSession, _: Envelope) -> None:
        profile = event.profile or _early_profile(event, posts)
        await apply(
            session,
            event.member_id,
            profile,
            as_of=event.registered_at,
            require_consent=require_consent,
        )

    @consumer.on(MemberUpdatedV1)
    async def updated(event: MemberUpdatedV1, session: AsyncSession, _: Envelope) -> None:
        await apply(
            session,
            event.member_id,
            event.profile,
            as_of=event.updated_at,
            require_consent=require_consent,
        )

    @consumer.on(MemberConfirmedV1)
    async def confirmed(event: MemberConfirmedV1, session: AsyncSession, _: Envelope) -> None:
        await apply(
            session,
            event.member_id,
            event.profile,
            as_of=event.confirmed_at,
            require_consent=require_consent,
        )

    @consumer.on(MemberMarkedStaleV1)
    async def marked_stale(event: MemberMarkedStaleV1, session: AsyncSession, _: Envelope) -> None:
        await apply(
            session,
            event.member_id,
            event.profile,
            as_of=event.marked_at,
            require_consent=require_consent,
        )

    @consumer.on(MemberIdentityVerifiedV1)
    async def identity_verified(
        event: MemberIdentityVerifiedV1, session: AsyncSession, _: Envelope
    ) -> None:
        # A snapshot like the others: on the compacted topic it may be a member's last event.
        await apply(
            session,
            event.member_id,
            event.profile,
            as_of=event.verified_at,
            require_consent=require_consent,
        )

    @consumer.on(MemberMergedV1)
    async def merged(event: MemberMergedV1, session: AsyncSession, _: Envelope) -> None:
        await remove(session, event.member_id, reason="merged")

    @consumer.on(MemberErasedV1)
    async def erased(event: MemberErasedV1, session: AsyncSession, _: Envelope) -> None:
        await remove(session, event.member_id, reason="erased")

    return consumer
