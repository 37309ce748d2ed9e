"""The contacts feature's reactions to the registry's member events, and the profile
reminder (``registry.member.marked-stale``).

Registered on the service's one consumer by ``bootstrap.build_consumer``, which hands
in the erasure steps of every feature (``erase_steps``, run in order when a member is
erased or merged away) and their merge steps (``merge_steps``, run in order when a
member is merged into another, before the erasure).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol
from uuid import UUID

import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import func

from diaspora_events.cloudevents import Envelope
from diaspora_events.consumer import EventConsumer, after_commit
from diaspora_events.contracts import (
    MemberConfirmedV1,
    MemberErasedV1,
    MemberIdentityVerifiedV1,
    MemberMarkedStaleV1,
    MemberMergedV1,
    MemberRegisteredV1,
    MemberUpdatedV1,
)
from diaspora_events.outbox import OutboxWriter
from notifications.contacts import service as contacts
from notifications.contacts import verification
from notifications.deliveries.dispatch import notify
from notifications.settings import NotificationsSettings
from notifications.tables import recipients

log = structlog.get_logger(__name__)

# The update campaign's reminder: the person is asked to check and confirm their
# profile (category ``profile_reminders``: a message about their own file, which they
# may nevertheless silence).
REMINDER_TEMPLATE = "member_profile_reminder"
# An officer verified the person's identity (category ``account``: their own file).
IDENTITY_VERIFIED_TEMPLATE = "member_identity_verified"

EraseStep = Callable[[AsyncSession, UUID], Awaitable[None]]
# (session, absorbed id, survivor id): a feature moves its rows of a merged-away record.
MergeStep = Callable[[AsyncSession, UUID, UUID], Awaitable[None]]


class Signal(Protocol):
    def set(self) -> None: ...


def register(
    consumer: EventConsumer,
    *,
    outbox: OutboxWriter,
    settings: NotificationsSettings,
    available_channels: frozenset[str],
    erase_steps: Sequence[EraseStep],
    merge_steps: Sequence[MergeStep],
    work_available: Signal | None = None,
    on_erased: Callable[[UUID], None] | None = None,
) -> None:
    """Add the member handlers and the profile reminder to the service's consumer."""

    async def erase(session: AsyncSession, member_id: UUID) -> None:
        """Every feature forgets the person (contacts last: the others refer to them)."""
        for step in erase_steps:
            await step(session, member_id)

    def wake(session: AsyncSession, created: object) -> None:
        if created and work_available is not None:
            # Wake the senders once the delivery rows are committed (visible to them).
            after_commit(session, work_available.set)

    async def snapshot_applied(
        session: AsyncSession, member_id: UUID, before: verification.Contacts | None
    ) -> list[str]:
        """Verify the new contact values a snapshot brought (docs/notifications.md)."""
        sent = await verification.send_for_new_values(
            session,
            outbox,
            settings,
            member_id=member_id,
            before=before,
            available=available_channels,
        )
        wake(session, sent)
        return sent

    @consumer.on(MemberRegisteredV1)
    async def member_registered(
        event: MemberRegisteredV1, session: AsyncSession, envelope: Envelope
    ) -> None:
        # Re-registration replaces the contact; an older event than the stored snapshot,
        # or a member erased or merged away, changes nothing (contacts.py).
        before = await verification.contacts_of(session, event.member_id)
        if event.profile is not None:
            applied = await contacts.apply_snapshot(
                session, event.member_id, event.profile, event.registered_at
            )
        else:
            contact = {
                "given_name": event.given_name,
                "family_name": event.family_name,
                "email": event.email,
                "phone": event.phone,
                "language": event.preferred_language,
                "country_of_residence": event.country_of_residence,
            }
            applied = await contacts.apply_contact(
                session, event.member_id, contact, event.registered_at
            )
        if not applied:
            return
        await session.execute(
            update(recipients)
            .where(recipients.c.member_id == event.member_id)
            .values(registered_at=func.coalesce(recipients.c.registered_at, event.registered_at))
        )
        # The first message is the verification of each new contact; the welcome follows
        # the first confirmation. With nothing to verify, the welcome goes now (to the
        # channels that need no proof: the in-app inbox).
        if not await snapshot_applied(session, event.member_id, before):
            created = await verification.welcome_if_due(
                session, outbox, event.member_id, available=available_channels
            )
            wake(session, created)

    @consumer.on(MemberErasedV1)
    async def member_erased(event: MemberErasedV1, session: AsyncSession, _: Envelope) -> None:
        await erase(session, event.member_id)
        # No late or replayed snapshot brings the person back.
        await contacts.record_removed(session, event.member_id, reason="erased", at=event.erased_at)
        log.info("member_erased", member_id=str(event.member_id))
        if on_erased is not None:
            on_erased(event.member_id)

    @consumer.on(MemberUpdatedV1)
    async def member_updated(event: MemberUpdatedV1, session: AsyncSession, _: Envelope) -> None:
        before = await verification.contacts_of(session, event.member_id)
        if await contacts.apply_snapshot(session, event.member_id, event.profile, event.updated_at):
            await snapshot_applied(session, event.member_id, before)

    @consumer.on(MemberConfirmedV1)
    async def member_confirmed(
        event: MemberConfirmedV1, session: AsyncSession, _: Envelope
    ) -> None:
        before = await verification.contacts_of(session, event.member_id)
        if await contacts.apply_snapshot(
            session, event.member_id, event.profile, event.confirmed_at
        ):
            await snapshot_applied(session, event.member_id, before)

    @consumer.on(MemberIdentityVerifiedV1)
    async def member_identity_verified(
        event: MemberIdentityVerifiedV1, session: AsyncSession, envelope: Envelope
    ) -> None:
        # A snapshot like the others (on the compacted topic it may be a member's last
        # event), then the person hears that an officer verified their identity.
        before = await verification.contacts_of(session, event.member_id)
        if await contacts.apply_snapshot(
            session, event.member_id, event.profile, event.verified_at
        ):
            await snapshot_applied(session, event.member_id, before)
        identity = event.profile.identity
        if identity is None or identity.expires_on is None:
            return  # nothing to tell: no check in the snapshot (never so from the registry)
        created = await notify(
            session,
            outbox,
            member_id=event.member_id,
            template=IDENTITY_VERIFIED_TEMPLATE,
            variables={
                "member_id": str(event.member_id),
                "level": event.level,
                "verified_at": event.verified_at.isoformat(),
                "expires_on": identity.expires_on.isoformat(),
            },
            cause_event_id=envelope.id,
            available=available_channels,
        )
        wake(session, created)

    @consumer.on(MemberMergedV1)
    async def member_merged(event: MemberMergedV1, session: AsyncSession, _: Envelope) -> None:
        # The absorbed record's inbox, preferences and log move to the survivor (whose
        # merged profile follows as registry.member.updated); the rest is erased.
        moved = await contacts.merge_into(session, event.member_id, event.survivor_id)
        if moved:
            for step in merge_steps:
                await step(session, event.member_id, event.survivor_id)
        await erase(session, event.member_id)
        await contacts.record_removed(
            session,
            event.member_id,
            reason="merged",
            at=event.merged_at,
            survivor_id=event.survivor_id,
        )
        log.info("member_merged", member_id=str(event.member_id), moved=moved)

    @consumer.on(MemberMarkedStaleV1)
    async def member_marked_stale(
        event: MemberMarkedStaleV1, session: AsyncSession, envelope: Envelope
    ) -> None:
        # The snapshot updates the contact (if newer than the one kept, and never for a
        # member erased or merged away): the reminder goes to the current address.
        await contacts.apply_snapshot(session, event.member_id, event.profile, event.marked_at)
        created = await notify(
            session,
            outbox,
            member_id=event.member_id,
            template=REMINDER_TEMPLATE,
            variables={
                "member_id": str(event.member_id),
                "last_confirmed_at": event.last_confirmed_at.isoformat(),
            },
            cause_event_id=envelope.id,
            available=available_channels,
        )
        if created is not None and work_available is not None:
            work_available.set()
