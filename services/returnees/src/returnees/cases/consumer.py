"""The cases' consumer of ``consular.applications`` (group ``returnees-cases``): a
laissez-passer issued by an embassy opens a reception case for the returnee, status
`declared`, expected arrival = the expected return date the applicant gave (else the
travel date). Idempotent twice over: the inbox records each event id, and a case is
unique per consular application (a replay of the same issue under another event id
opens nothing). Consular's other application events are not this consumer's business.
"""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.cloudevents import Envelope
from diaspora_events.consumer import DeadLetterSink, EventConsumer
from diaspora_events.contracts import LaissezPasserIssuedV1
from diaspora_events.outbox import OutboxWriter
from diaspora_events.shredding import KeyResolver
from returnees.cases import service
from returnees.tables import inbox

log = structlog.get_logger(__name__)

CONSUMER_NAME = "returnees-cases"
# Who opened a case the consular event opened.
OPENED_BY = "system:consular-laissez-passer"


def build_consumer(
    *,
    sessions: async_sessionmaker[AsyncSession],
    dead_letters: DeadLetterSink,
    outbox: OutboxWriter,
    topic_prefix: str = "",
    keys: KeyResolver | None = None,
) -> EventConsumer:
    consumer = EventConsumer(
        name=CONSUMER_NAME,
        session_factory=sessions,
        inbox=inbox,
        dead_letters=dead_letters,
        topic_prefix=topic_prefix,
        keys=keys,
    )

    @consumer.on(LaissezPasserIssuedV1)
    async def laissez_passer_issued(
        event: LaissezPasserIssuedV1, session: AsyncSession, _: Envelope
    ) -> None:
        case = await service.open_case(
            session,
            outbox,
            case_id=service.new_case_id(),
            member_id=event.applicant_id,
            returnee_subject=None,
            origin="laissez_passer",
            opened_by=OPENED_BY,
            now=event.issued_at,
            application_id=event.application_id,
            expected_arrival=event.expected_return_date or event.travel_date,
        )
        if case is not None:
            log.info("reception_case_opened", case_id=str(case["id"]))

    return consumer
