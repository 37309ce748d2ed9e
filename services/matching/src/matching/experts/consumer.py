"""The experts read model's consumer of ``registry.members`` (inbox, retries, dead letters)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.cloudevents import Envelope
from diaspora_events.consumer import DeadLetterSink, EventConsumer
from matching.experts.projection import MEMBER_EVENTS, apply_event
from matching.tables import inbox

CONSUMER_NAME = "matching-experts"


async def _apply(event: Any, session: AsyncSession, envelope: Envelope) -> None:
    await apply_event(session, event, envelope.time)


def build_consumer(
    *,
    sessions: async_sessionmaker[AsyncSession],
    dead_letters: DeadLetterSink,
    topic_prefix: str = "",
) -> EventConsumer:
    """The consumer keeping ``experts`` in step with the registry (group ``matching-experts``)."""
    consumer = EventConsumer(
        name=CONSUMER_NAME,
        session_factory=sessions,
        inbox=inbox,
        dead_letters=dead_letters,
        topic_prefix=topic_prefix,
    )
    for contract in MEMBER_EVENTS:
        consumer.on(contract)(_apply)
    return consumer
