"""Reactions to other services' events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

import structlog
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import func

from diaspora_events.cloudevents import Envelope
from diaspora_events.consumer import DeadLetterSink, EventConsumer, after_commit
from diaspora_events.contracts import (
    MemberConfirmedV1,
    MemberErasedV1,
    MemberMergedV1,
    MemberRegisteredV1,
    MemberUpdatedV1,
)
from diaspora_events.outbox import OutboxWriter
from diaspora_events.shredding import KeyResolver
from notifications import contacts, matching, profile_reminders, verification
from notifications.adapters.orm import (
    campaign_recipients,
    contact_verifications,
    deliveries,
    inbox,
    inbox_messages,
    preferences,
    recipients,
)
from notifications.dispatch import notify
from notifications.settings import NotificationsSettings

CONSUMER_NAME = "notifications"
DEFAULT_CHANNELS = frozenset({"email", "inbox"})

log = structlog.get_logger(__name__)


class Signal(Protocol):
    def set(self) -> None: ...


async def erase(session: AsyncSession, member_id: UUID) -> None:
    """Delete the person's contacts, preferences and inbox; anonymise their delivery log.

    Delivery rows stay (status, channel, category, template, times, attempts) so that
    counts hold; everything that says who they are or what they were told goes.
    """
    now = datetime.now(UTC)
    await session.execute(
        update(deliveries)
        .where(deliveries.c.recipient_id == member_id)
        .values(
            recipient_id=None,
            address=None,
            subject=None,
            body=None,
            sms_text=None,
            last_error=None,
            traceparent=None,
            anonymised_at=now,
            status=func.coalesce(func.nullif(deliveries.c.status, "pending"), "cancelled"),
        )
    )
    await session.execute(
        update(campaign_recipients)
        .where(campaign_recipients.c.recipient_id == member_id)
        .values(recipient_id=None)
    )
    await session.execute(
        delete(contact_verifications).where(contact_verifications.c.member_id == member_id)
    )
    await session.execute(delete(inbox_messages).where(inbox_messages.c.member_id == member_id))
    await session.execute(delete(preferences).where(preferences.c.member_id == member_id))
    await session.execute(delete(recipients).where(recipients.c.member_id == member_id))


def build_consumer(
    *,
    sessions: async_sessionmaker[AsyncSession],
    dead_letters: DeadLetterSink,
    work_available: Signal | None = None,
    topic_prefix: str = "",
    outbox: OutboxWriter | None = None,
    available_channels: frozenset[str] = DEFAULT_CHANNELS,
    on_erased: Callable[[UUID], None] | None = None,
    settings: NotificationsSettings | None = None,
    keys: KeyResolver | None = None,
) -> EventConsumer:
    consumer = EventConsumer(
        name=CONSUMER_NAME,
        session_factory=sessions,
        inbox=inbox,
        dead_letters=dead_letters,
        topic_prefix=topic_prefix,
        keys=keys,  # opens sealed personal fields (crypto-shredding)
    )
    from notifications.adapters.orm import outbox as outbox_table

    writer = outbox or OutboxWriter(outbox_table, source="/tg/diaspora/notifications")
    # (The defaults when none are given: the AsyncAPI document builds a consumer.)
    config = settings or NotificationsSettings.model_construct()

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
            writer,
            config,
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
                session, writer, event.member_id, available=available_channels
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

    @consumer.on(MemberMergedV1)
    async def member_merged(event: MemberMergedV1, session: AsyncSession, _: Envelope) -> None:
        # The absorbed record's inbox, preferences and log move to the survivor (whose
        # merged profile follows as registry.member.updated); the rest is erased.
        moved = await contacts.merge_into(session, event.member_id, event.survivor_id)
        await erase(session, event.member_id)
        await contacts.record_removed(
            session,
            event.member_id,
            reason="merged",
            at=event.merged_at,
            survivor_id=event.survivor_id,
        )
        log.info("member_merged", member_id=str(event.member_id), moved=moved)

    matching.register(
        consumer,
        notify=notify,
        outbox=writer,
        available=available_channels,
        wake=lambda _session: work_available.set() if work_available is not None else None,
    )
    profile_reminders.register(
        consumer,
        notify=notify,
        outbox=writer,
        available=available_channels,
        wake=lambda _session: work_available.set() if work_available is not None else None,
    )
    return consumer
