"""Reactions to other services' events."""

from __future__ import annotations

import asyncio

import uuid_utils.compat as uuid_compat
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import func

from diaspora_events.cloudevents import Envelope
from diaspora_events.consumer import DeadLetterSink, EventConsumer
from diaspora_events.contracts import MemberRegisteredV1
from diaspora_events.observability import current_traceparent
from notifications.adapters.orm import deliveries, inbox, recipients
from notifications.templates import render

CONSUMER_NAME = "notifications"


def build_consumer(
    *,
    sessions: async_sessionmaker[AsyncSession],
    dead_letters: DeadLetterSink,
    work_available: asyncio.Event | None = None,
    topic_prefix: str = "",
) -> EventConsumer:
    consumer = EventConsumer(
        name=CONSUMER_NAME,
        session_factory=sessions,
        inbox=inbox,
        dead_letters=dead_letters,
        topic_prefix=topic_prefix,
    )

    @consumer.on(MemberRegisteredV1)
    async def member_registered(
        event: MemberRegisteredV1, session: AsyncSession, envelope: Envelope
    ) -> None:
        contact = {
            "given_name": event.given_name,
            "family_name": event.family_name,
            "email": event.email,
            "phone": event.phone,
            "language": event.preferred_language,
            "country_of_residence": event.country_of_residence,
        }
        await session.execute(
            insert(recipients)
            .values(member_id=event.member_id, **contact)
            .on_conflict_do_update(
                index_elements=[recipients.c.member_id],
                set_={**contact, "updated_at": func.now()},
            )
        )
        message = render(
            "member_welcome",
            event.preferred_language,
            {
                "given_name": event.given_name,
                "family_name": event.family_name,
                "member_id": str(event.member_id),
            },
        )
        await session.execute(
            insert(deliveries)
            .values(
                id=uuid_compat.uuid7(),
                cause_event_id=envelope.id,
                recipient_id=event.member_id,
                channel="email",
                template="member_welcome",
                language=message.language,
                address=event.email,
                subject=message.subject,
                body=message.body,
                traceparent=current_traceparent().get("traceparent"),
            )
            .on_conflict_do_nothing(constraint="deliveries_once")
        )
        if work_available is not None:
            work_available.set()

    return consumer
