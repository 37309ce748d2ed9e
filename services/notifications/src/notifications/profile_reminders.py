"""The update campaign's reminder: ``registry.member.marked-stale`` -> the person is asked
to check and confirm their profile.

Category ``profile_reminders``: a service message about the person's own file, which
they may nevertheless silence (opt-out in their preferences). The contact is the one
kept from the registry's events; when notifications never saw the person (a
registration older than this service), the event's snapshot provides it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.cloudevents import Envelope
from diaspora_events.consumer import EventConsumer
from diaspora_events.contracts import MemberMarkedStaleV1
from diaspora_events.outbox import OutboxWriter
from notifications.adapters.orm import recipients

TEMPLATE = "member_profile_reminder"
Notify = Callable[..., Any]
Wake = Callable[[AsyncSession], None]


def register(
    consumer: EventConsumer,
    *,
    notify: Notify,
    outbox: OutboxWriter,
    available: frozenset[str],
    wake: Wake,
) -> None:
    """Add the reminder handler to the notifications consumer."""

    @consumer.on(MemberMarkedStaleV1)
    async def member_marked_stale(
        event: MemberMarkedStaleV1, session: AsyncSession, envelope: Envelope
    ) -> None:
        profile = event.profile
        await session.execute(
            insert(recipients)
            .values(
                member_id=event.member_id,
                given_name=profile.given_name,
                family_name=profile.family_name,
                email=profile.email,
                phone=profile.phone,
                language=profile.preferred_language,
                country_of_residence=profile.country_of_residence,
            )
            .on_conflict_do_nothing(index_elements=[recipients.c.member_id])
        )
        created = await notify(
            session,
            outbox,
            member_id=event.member_id,
            template=TEMPLATE,
            variables={
                "member_id": str(event.member_id),
                "last_confirmed_at": event.last_confirmed_at.isoformat(),
            },
            cause_event_id=envelope.id,
            available=available,
        )
        if created is not None:
            wake(session)
