"""Reactions to the matching service's events: the person concerned is told.

Registered on the service's one consumer by ``bootstrap.build_consumer``.

- ``matching.match.proposed``: the expert, that a mission is proposed to them;
- ``matching.mission.agreed``: the expert, that the mission's dates are agreed;
- ``matching.interest.expressed``: the project holder, that someone is interested.

Messages are in the ``missions`` category (a person may silence it); the contact is
the one kept from the registry's events, as for every other message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.cloudevents import Envelope
from diaspora_events.consumer import EventConsumer
from diaspora_events.contracts import InterestExpressedV1, MatchProposedV1, MissionAgreedV1
from diaspora_events.outbox import OutboxWriter
from notifications.deliveries.dispatch import notify

Wake = Callable[[AsyncSession], None]


def _day(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def register(
    consumer: EventConsumer,
    *,
    outbox: OutboxWriter,
    available: frozenset[str],
    wake: Wake,
) -> None:
    """Add the matching handlers to the notifications consumer."""

    async def tell(
        session: AsyncSession,
        envelope: Envelope,
        member_id: UUID,
        template: str,
        variables: dict[str, Any],
    ) -> None:
        created = await notify(
            session,
            outbox,
            member_id=member_id,
            template=template,
            variables=variables,
            cause_event_id=envelope.id,
            available=available,
        )
        if created is not None:
            wake(session)

    @consumer.on(MatchProposedV1)
    async def match_proposed(
        event: MatchProposedV1, session: AsyncSession, envelope: Envelope
    ) -> None:
        await tell(
            session,
            envelope,
            event.member_id,
            "match_proposed",
            {
                "proposal_id": str(event.proposal_id),
                "need_title": event.need_title,
                "need_type": event.need_type,
                "institution": event.institution,
                "region": event.region,
                "starts_on": _day(event.starts_on),
                "ends_on": _day(event.ends_on),
                "respond_by": _day(event.respond_by),
            },
        )

    @consumer.on(MissionAgreedV1)
    async def mission_agreed(
        event: MissionAgreedV1, session: AsyncSession, envelope: Envelope
    ) -> None:
        await tell(
            session,
            envelope,
            event.member_id,
            "mission_agreed",
            {
                "mission_id": str(event.mission_id),
                "need_type": event.facts.type,
                "region": event.facts.region,
                "starts_on": event.starts_on.isoformat(),
                "ends_on": event.ends_on.isoformat(),
            },
        )

    @consumer.on(InterestExpressedV1)
    async def interest_expressed(
        event: InterestExpressedV1, session: AsyncSession, envelope: Envelope
    ) -> None:
        await tell(
            session,
            envelope,
            event.holder_id,
            "interest_expressed",
            {
                "project_id": str(event.project_id),
                "project_title": event.project_title,
                "organisation": event.organisation,
                "message": event.message,
            },
        )
