"""The update campaign's reminder: ``registry.member.marked-stale`` -> the person is asked
to check and confirm their profile.

Category ``profile_reminders``: a service message about the person's own file, which
they may nevertheless silence (opt-out in their preferences). The event's snapshot
updates the contact kept (or provides it, when notifications never saw the person),
unless an event more recent was applied already or the member was erased or merged
away (``contacts.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.cloudevents import Envelope
from diaspora_events.consumer import EventConsumer
from diaspora_events.contracts import MemberMarkedStaleV1
from diaspora_events.outbox import OutboxWriter
from notifications import contacts

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
        # The snapshot updates the contact (if newer than the one kept, and never for a
        # member erased or merged away): the reminder goes to the current address.
        await contacts.apply_snapshot(session, event.member_id, event.profile, event.marked_at)
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
