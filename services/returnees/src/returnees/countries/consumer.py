"""The country lists' consumer of the consular service's difficulty reports (group
``returnees-countries``): each ``consular.report.filed`` counts once for its country and
category (the evidence a watchlist proposal rests on). Idempotent: the inbox records
each event id in the handler's transaction. A report whose reporter was erased before
it was read cannot be opened and is not counted (its personal fields are sealed)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.cloudevents import Envelope
from diaspora_events.consumer import DeadLetterSink, EventConsumer
from diaspora_events.contracts.consular import ReportFiledV1
from diaspora_events.shredding import KeyResolver
from returnees.countries import service
from returnees.tables import inbox

CONSUMER_NAME = "returnees-countries"


def build_consumer(
    *,
    sessions: async_sessionmaker[AsyncSession],
    dead_letters: DeadLetterSink,
    topic_prefix: str = "",
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

    @consumer.on(ReportFiledV1)
    async def filed(event: ReportFiledV1, session: AsyncSession, _: Envelope) -> None:
        await service.count_report(session, event)

    return consumer
