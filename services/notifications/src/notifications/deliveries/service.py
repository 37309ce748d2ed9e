"""Delivery log and resend use cases (one transaction each), and the erasure step."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import uuid_utils.compat as uuid_compat
from sqlalchemy import ColumnElement, and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import func

from diaspora_identity.audit import AccessContext
from diaspora_identity.http import Identity
from diaspora_identity.policy import Decision
from notifications.audit import DELIVERY_FIELDS, audit_trail
from notifications.deliveries.dispatch import enqueue, load_target
from notifications.deliveries.tables import deliveries
from notifications.resources import Notifications
from notifications.tables import recipients

RESEND_NAMESPACE = uuid.UUID("6f1c1d1e-8a43-4c1e-9a55-2f1d0c6b7a10")


class NotResent(Exception):
    """The delivery cannot be resent: ``title`` and ``detail`` say why (a 409)."""

    def __init__(self, title: str, detail: str | None = None) -> None:
        super().__init__(title)
        self.title = title
        self.detail = detail


def recipient_scope(decision: Decision, identity: Identity) -> ColumnElement[bool]:
    """The recipients a delivery decision reaches (the person, an embassy's, everyone)."""
    return decision.where(
        {
            "recipient_id": recipients.c.member_id,
            "embassy_id": identity.jurisdictions.sql_embassy_of(recipients.c.country_of_residence),
        }
    )


async def in_scope(service: Notifications, scope: ColumnElement[bool], member_id: UUID) -> bool:
    async with service.sessions() as session:
        found = (
            await session.execute(
                select(recipients.c.member_id).where(recipients.c.member_id == member_id, scope)
            )
        ).first()
    return found is not None


async def delivery_log(
    service: Notifications,
    decision: Decision,
    access: AccessContext,
    *,
    member_id: UUID,
    reader: UUID | None,
    limit: int,
    before: datetime | None,
) -> list[Any]:
    """Up to ``limit + 1`` of the person's deliveries, newest first; a reader other than
    the person leaves an audit entry in the same transaction."""
    query = (
        select(deliveries)
        .where(deliveries.c.recipient_id == member_id)
        .order_by(deliveries.c.created_at.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(deliveries.c.created_at < before)
    async with service.sessions() as session, session.begin():
        rows = list((await session.execute(query)).all())
        if reader != member_id:
            await audit_trail(service.outbox).record(
                session, decision, access, [(member_id, DELIVERY_FIELDS)]
            )
    return rows


async def resend(
    service: Notifications,
    scope: ColumnElement[bool],
    delivery_id: UUID,
    idempotency_key: str | None,
) -> tuple[Any, Any] | None:
    """(original, new delivery), or None when the delivery is not in scope; ``NotResent``
    when it cannot be resent. The same ``idempotency_key`` creates nothing more."""
    cause = (
        uuid.uuid5(RESEND_NAMESPACE, f"{delivery_id}:{idempotency_key}")
        if idempotency_key
        else uuid_compat.uuid7()
    )
    async with service.sessions() as session, session.begin():
        original = (
            await session.execute(
                select(deliveries)
                .join(recipients, recipients.c.member_id == deliveries.c.recipient_id)
                .where(deliveries.c.id == delivery_id, scope)
            )
        ).first()
        if original is None:
            return None
        if original.reason == "verification":
            raise NotResent(
                "A verification is not resent",
                "Its secret is gone: the person asks for a new one (/me/contacts).",
            )
        target = await load_target(session, original.recipient_id)
        assert target is not None
        address = target.address(original.channel)
        if original.channel != "inbox" and not address:
            raise NotResent("No address", f"The person has no {original.channel} now.")
        row = {
            "id": uuid_compat.uuid7(),
            "cause_event_id": cause,
            "recipient_id": original.recipient_id,
            "channel": original.channel,
            "template": original.template,
            "template_version": original.template_version,
            "category": original.category,
            "mandatory": original.mandatory,
            "language": original.language,
            "address": address,
            "subject": original.subject,
            "body": original.body,
            "sms_text": original.sms_text,
            "traceparent": None,
            "campaign_id": original.campaign_id,
            "previous_id": original.id,
            "reason": "resend",
        }
        await enqueue(session, service.outbox, [row])
        created = (
            await session.execute(
                select(deliveries).where(
                    deliveries.c.cause_event_id == cause,
                    deliveries.c.recipient_id == original.recipient_id,
                    deliveries.c.channel == original.channel,
                )
            )
        ).one()
    return original, created


async def erase_member(session: AsyncSession, member_id: UUID) -> None:
    """Erasure step: the person's delivery log is anonymised.

    Delivery rows stay (status, channel, category, template, times, attempts) so that
    counts hold; everything that says who they are or what they were told goes.
    """
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
            anonymised_at=datetime.now(UTC),
            status=func.coalesce(func.nullif(deliveries.c.status, "pending"), "cancelled"),
        )
    )


async def merge_member(session: AsyncSession, absorbed_id: UUID, survivor_id: UUID) -> None:
    """Merge step: the absorbed record's delivery log moves to the survivor, except the
    deliveries the survivor has too (same cause and channel): those stay with the
    absorbed id and are anonymised by the erasure that follows."""
    theirs = deliveries.alias("theirs")
    await session.execute(
        update(deliveries)
        .where(
            deliveries.c.recipient_id == absorbed_id,
            ~exists().where(
                and_(
                    theirs.c.recipient_id == survivor_id,
                    theirs.c.cause_event_id == deliveries.c.cause_event_id,
                    theirs.c.channel == deliveries.c.channel,
                )
            ),
        )
        .values(recipient_id=survivor_id)
    )
