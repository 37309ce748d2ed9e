"""Reactions to the returnees service's advisories and awareness subscribers.

Registered on the service's one consumer by ``bootstrap.build_consumer``:

- ``returnees.advisory.published``: the fan-out (``service.fan_out``): members living in
  the country and the country's confirmed subscribers, once each, in their language;
- ``returnees.subscriber.requested``: the confirmation link to the address (double
  opt-in), the only message an unconfirmed subscriber receives;
- ``returnees.subscriber.confirmed``: the subscriber is told from now on;
- ``returnees.subscriber.unsubscribed``: their address is forgotten, their queue cancelled.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.cloudevents import Envelope
from diaspora_events.consumer import EventConsumer
from diaspora_events.contracts import (
    AdvisoryPublishedV1,
    SubscriberConfirmedV1,
    SubscriberRequestedV1,
    SubscriberUnsubscribedV1,
)
from diaspora_events.outbox import OutboxWriter
from notifications.advisories import service

Wake = Callable[[AsyncSession], None]


def register(
    consumer: EventConsumer,
    *,
    outbox: OutboxWriter,
    available: frozenset[str],
    wake: Wake,
) -> None:
    """Add the advisories' handlers to the notifications consumer."""

    @consumer.on(AdvisoryPublishedV1)
    async def published(
        event: AdvisoryPublishedV1, session: AsyncSession, envelope: Envelope
    ) -> None:
        reached = await service.fan_out(
            session, outbox, event, cause_event_id=envelope.id, available=available
        )
        if reached.members or reached.subscribers:
            wake(session)

    @consumer.on(SubscriberRequestedV1)
    async def subscriber_requested(
        event: SubscriberRequestedV1, session: AsyncSession, envelope: Envelope
    ) -> None:
        created = await service.requested(
            session, outbox, event, cause_event_id=envelope.id, available=available
        )
        if created is not None:
            wake(session)

    @consumer.on(SubscriberConfirmedV1)
    async def subscriber_confirmed(
        event: SubscriberConfirmedV1, session: AsyncSession, _: Envelope
    ) -> None:
        await service.confirmed(session, event)

    @consumer.on(SubscriberUnsubscribedV1)
    async def subscriber_unsubscribed(
        event: SubscriberUnsubscribedV1, session: AsyncSession, _: Envelope
    ) -> None:
        await service.unsubscribed(session, event)
