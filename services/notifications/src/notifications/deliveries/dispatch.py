"""From "tell this person" to delivery rows: consent, channel choice, rendering.

One notification to one person becomes one delivery on the first channel of the
person's order that can reach them; a permanent failure there creates the next
delivery on the next channel (fallback). Deliveries are unique per (cause event,
recipient, channel), so a redelivered event or a restarted campaign adds nothing.
The in-app inbox is local: its delivery is the inbox row itself, written in the
same transaction and recorded as delivered at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog
import uuid_utils.compat as uuid_compat
from sqlalchemy import bindparam, case, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.contracts import DeliveryDeliveredV1
from diaspora_events.observability import current_traceparent
from diaspora_events.outbox import OutboxWriter
from notifications.deliveries.tables import deliveries
from notifications.preferences.domain import Preferences, category, channel_chain
from notifications.preferences.tables import inbox_messages, preferences
from notifications.tables import recipients
from notifications.templates.domain import Rendered, locale_of, render_version
from notifications.templates.service import resolve

log = structlog.get_logger(__name__)

# A contact the person has proven they own, else NULL: nothing but its verification
# (notifications.contacts.verification) is ever sent to an unverified address, so every message
# (welcome, campaigns, proposals, fallbacks, resends) skips that channel.
VERIFIED_EMAIL = case((recipients.c.email_verified_at.is_not(None), recipients.c.email), else_=None)
VERIFIED_PHONE = case((recipients.c.phone_verified_at.is_not(None), recipients.c.phone), else_=None)

# Columns of a recipient with their preferences (NULLs when the person has none).
TARGET_COLUMNS = (
    recipients.c.member_id,
    recipients.c.given_name,
    recipients.c.family_name,
    VERIFIED_EMAIL.label("email"),
    VERIFIED_PHONE.label("phone"),
    recipients.c.language,
    recipients.c.country_of_residence,
    preferences.c.channels,
    preferences.c.timezone,
    preferences.c.quiet_start,
    preferences.c.quiet_end,
    preferences.c.opted_out,
    preferences.c.consents,
)


def target_query() -> Any:
    return select(*TARGET_COLUMNS).select_from(
        recipients.outerjoin(preferences, preferences.c.member_id == recipients.c.member_id)
    )


# Built once: building and keying a statement costs more CPU than running it.
_TARGET_BY_ID = target_query().where(recipients.c.member_id == bindparam("member_id"))
_INSERT_DELIVERIES = (
    insert(deliveries)
    .on_conflict_do_nothing(constraint="deliveries_once")
    .returning(deliveries.c.id)
)


@dataclass(frozen=True)
class Target:
    """A person as the dispatcher needs them (``email``/``phone``: verified ones only)."""

    member_id: UUID
    given_name: str
    family_name: str
    email: str | None
    phone: str | None
    language: str
    country: str | None
    prefs: Preferences

    @classmethod
    def of(cls, row: Any) -> Target:
        return cls(
            member_id=row.member_id,
            given_name=row.given_name,
            family_name=row.family_name,
            email=row.email,
            phone=row.phone,
            language=row.language,
            country=row.country_of_residence,
            prefs=Preferences.of(row),
        )

    @property
    def zone(self) -> str:
        return self.prefs.zone(self.country)

    @property
    def locale(self) -> str:
        return self.language

    def locale_for(self, language: str) -> str:
        return locale_of(language, self.country)

    def address(self, channel: str) -> str | None:
        if channel == "email":
            return self.email
        if channel == "sms":
            return self.phone
        return None

    def chain(self, available: frozenset[str]) -> list[str]:
        return channel_chain(self.prefs, email=self.email, phone=self.phone, available=available)


async def load_target(session: AsyncSession, member_id: UUID) -> Target | None:
    row = (await session.execute(_TARGET_BY_ID, {"member_id": member_id})).first()
    return Target.of(row) if row else None


class Skip(Exception):
    """The person is not to be told (opted out, no consent, no channel): the reason."""


def choose_channel(target: Target, category_name: str, available: frozenset[str]) -> str:
    """The channel to use first, or Skip with the reason."""
    cat = category(category_name)
    if not cat.mandatory:
        if category_name in target.prefs.opted_out:
            raise Skip(f"opted out of {category_name}")
        if cat.needs_consent and category_name not in target.prefs.consents:
            raise Skip(f"no consent to {category_name}")
    chain = target.chain(available)
    if not chain:
        raise Skip("no channel reaches this person")
    return chain[0]


def delivery_row(
    target: Target,
    channel: str,
    message: Rendered,
    *,
    cause_event_id: UUID,
    template: str,
    category_name: str,
    traceparent: str | None = None,
    campaign_id: UUID | None = None,
    previous_id: UUID | None = None,
    reason: str = "event",
) -> dict[str, Any]:
    return {
        "id": uuid_compat.uuid7(),
        "cause_event_id": cause_event_id,
        "recipient_id": target.member_id,
        "channel": channel,
        "template": template,
        "template_version": message.version,
        "category": category_name,
        "mandatory": category(category_name).mandatory,
        "language": message.language,
        "address": target.address(channel),
        "subject": message.subject,
        "body": message.body,
        "sms_text": message.sms,
        "traceparent": traceparent,
        "campaign_id": campaign_id,
        "previous_id": previous_id,
        "reason": reason,
    }


async def enqueue(
    session: AsyncSession, outbox: OutboxWriter, rows: Sequence[Mapping[str, Any]]
) -> list[UUID]:
    """Insert deliveries (duplicates dropped); inbox ones are delivered at once.

    Returns the ids of the deliveries actually created.
    """
    if not rows:
        return []
    now = datetime.now(UTC)
    prepared = []
    for row in rows:
        values = {"status": "pending", "attempts": 0, "sent_at": None, **row}
        if values["channel"] == "inbox":
            values.update(status="sent", attempts=1, sent_at=now)
        prepared.append(values)
    # executemany form: one cached statement, sent in batches ("insertmanyvalues").
    created = (await session.execute(_INSERT_DELIVERIES, prepared)).scalars()
    created_ids = set(created)
    inbox_rows = [r for r in prepared if r["channel"] == "inbox" and r["id"] in created_ids]
    if inbox_rows:
        await session.execute(
            inbox_messages.insert(),
            [
                {
                    "id": r["id"],
                    "member_id": r["recipient_id"],
                    "delivery_id": r["id"],
                    "category": r["category"],
                    "title": r["subject"],
                    "body": r["body"],
                    "created_at": now,
                }
                for r in inbox_rows
            ],
        )
        await outbox.add_many(
            session,
            [
                DeliveryDeliveredV1(
                    delivery_id=r["id"],
                    recipient_id=r["recipient_id"],
                    channel="inbox",
                    template=r["template"],
                    cause_event_id=r["cause_event_id"],
                    delivered_at=now,
                    attempts=1,
                )
                for r in inbox_rows
            ],
        )
    return [r["id"] for r in prepared if r["id"] in created_ids]


async def notify(
    session: AsyncSession,
    outbox: OutboxWriter,
    *,
    member_id: UUID,
    template: str,
    variables: dict[str, Any],
    cause_event_id: UUID,
    available: frozenset[str],
    with_inbox: bool = False,
) -> UUID | None:
    """Tell one person: template in their language, on their first reachable channel
    (``with_inbox``: and in their in-app inbox too, when that is not already it).

    Returns the delivery id, or None when nothing is sent (opted out, no channel, or
    already done for this event).
    """
    target = await load_target(session, member_id)
    if target is None:
        return None
    version = await resolve(session, template, target.language)
    try:
        channel = choose_channel(target, version.category, available)
    except Skip as reason:
        log.info("notification_skipped", template=template, reason=str(reason))
        return None
    message = render_version(
        version,
        {**variables, "given_name": target.given_name, "family_name": target.family_name},
        locale=target.locale_for(version.language),
        timezone=target.zone,
    )
    channels = [channel]
    if with_inbox and channel != "inbox" and "inbox" in available:
        channels.append("inbox")
    created = await enqueue(
        session,
        outbox,
        [
            delivery_row(
                target,
                each,
                message,
                cause_event_id=cause_event_id,
                template=template,
                category_name=version.category,
                traceparent=current_traceparent().get("traceparent"),
            )
            for each in channels
        ],
    )
    return created[0] if created else None
