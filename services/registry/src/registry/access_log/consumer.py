"""The person's access log across services (issue 15).

Every service keeps its own audit trail and publishes each entry on its ``*.audit``
topic, keyed by member id. The registry, where the person reads who accessed their
record (``GET /members/{id}/access-log``), keeps a read model of the other services'
entries (``member_accesses``), filled by the ``registry-access-log`` consumer, and merges
it with its own ``audit_log``, newest first, each entry naming the service it came from.

Adding a service: append its audit contract (a subclass of
``diaspora_events.contracts.audit.AuditRecorded`` whose record id is the member id) to
:data:`AUDIT_CONTRACTS`; the service name is its topic's owner.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.cloudevents import Envelope
from diaspora_events.consumer import DeadLetterSink, EventConsumer
from diaspora_events.contracts.audit import AuditRecorded
from diaspora_events.contracts.consular import ConsularAuditRecordedV1
from diaspora_events.contracts.matching import MatchingAuditRecordedV1
from diaspora_events.contracts.notifications import NotificationsAuditRecordedV1
from diaspora_events.contracts.returnees import ReturneesAuditRecordedV1
from diaspora_events.shredding import KeyResolver
from registry.access_log.tables import member_accesses
from registry.tables import inbox

CONSUMER_NAME = "registry-access-log"

# The other services' audit events about members (the registry's own are in audit_log).
AUDIT_CONTRACTS: tuple[type[AuditRecorded], ...] = (
    MatchingAuditRecordedV1,
    NotificationsAuditRecordedV1,
    ConsularAuditRecordedV1,
    ReturneesAuditRecordedV1,
)
# Audited resources that are nobody's record (an administrator's template preview):
# kept in their service's audit trail, never in a person's access log. (Consular's staff
# accesses to a foreign visitor's e-visa are recorded against the application id: kept
# under that id, which no member's log ever lists.)
# Returnees' partner organisations (`returnee_partner`) are organisations, not people.
NOT_ABOUT_A_PERSON = frozenset(
    {"notification_template", "consular_service_type", "returnee_partner"}
)


async def record_access(session: AsyncSession, service: str, event: AuditRecorded) -> None:
    """Keep one access (idempotent on the audit id, besides the consumer's inbox)."""
    if event.resource in NOT_ABOUT_A_PERSON:
        return
    await session.execute(
        insert(member_accesses)
        .values(
            audit_id=event.audit_id,
            service=service,
            record_id=event.record_id,
            occurred_at=event.occurred_at,
            action=event.action,
            resource=event.resource,
            actor_subject=event.actor_subject,
            actor_roles=event.actor_roles,
            actor_is_service=event.actor_is_service,
            fields=event.fields,
        )
        .on_conflict_do_nothing(index_elements=["audit_id"])
    )


def build_consumer(
    *,
    sessions: async_sessionmaker[AsyncSession],
    dead_letters: DeadLetterSink,
    topic_prefix: str = "",
    contracts: Sequence[type[AuditRecorded]] = AUDIT_CONTRACTS,
    keys: KeyResolver | None = None,
) -> EventConsumer:
    # Other services seal their audit entries' personal fields with the member's key
    # (crypto-shredding): an erased member's entries no longer open and are skipped.
    consumer = EventConsumer(
        name=CONSUMER_NAME,
        session_factory=sessions,
        inbox=inbox,
        dead_letters=dead_letters,
        topic_prefix=topic_prefix,
        keys=keys,
    )
    for contract in contracts:
        service = contract.topic.owner

        async def recorded(
            event: AuditRecorded, session: AsyncSession, _: Envelope, service: str = service
        ) -> None:
            await record_access(session, service, event)

        consumer.on(contract)(recorded)
    return consumer
