"""Composition root: builds the service's handles, then its consumers and periodic
jobs, handing each its dependencies (nothing registers itself at import time).

- ``bootstrap``: settings, database, outbox, identity, audit trail, and the step a
  closing need runs (its pending proposals withdrawn).
- ``consumers``: the experts read model's consumer and the records' consumer, with
  each feature's erasure, merge and consent steps.
- ``periodic_tasks``: needs past their dates expire.
"""

from __future__ import annotations

from datetime import date

import structlog
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.consumer import DeadLetterSink, EventConsumer
from diaspora_events.contracts import MatchingAuditRecordedV1
from diaspora_events.outbox import OutboxWriter
from diaspora_events.runtime import Task, every
from diaspora_events.shredding import KeyResolver, event_key_settings
from diaspora_identity.audit import AuditTrail, audit_event_factory
from diaspora_identity.http import Identity
from diaspora_service.db import make_engine, make_session_factory
from matching import SERVICE_NAME
from matching.experts.consumer import build_consumer as experts_consumer
from matching.missions import service as missions
from matching.needs.service import expire_due
from matching.projects import service as projects
from matching.proposals import service as proposals
from matching.records.consumer import build_consumer as records_consumer
from matching.resources import Matching
from matching.settings import MatchingSettings
from matching.tables import audit_log, outbox
from matching.tables import metadata as service_metadata

log = structlog.get_logger(__name__)


# The event published for each audit entry (its fields are the entry's).
audit_event = audit_event_factory(MatchingAuditRecordedV1)


def bootstrap(settings: MatchingSettings | None = None) -> Matching:
    settings = settings or MatchingSettings()
    engine = make_engine(settings.async_database_url)
    key_settings = event_key_settings("MATCHING")
    writer = OutboxWriter(
        outbox, source=settings.event_source, keys=key_settings.resolver(SERVICE_NAME, ttl=0.0)
    )
    return Matching(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        outbox=writer,
        identity=Identity.from_settings(settings),
        audit=AuditTrail(audit_log, writer, audit_event),
        need_closed=proposals.withdraw_for_closed_need,
        key_settings=key_settings,
    )


def metadata() -> MetaData:
    """Every table of the service (the migrations' target): the service-wide ones and
    each feature's, declared on it by the features' ``tables.py`` imported above."""
    return service_metadata


def consumers(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    dead_letters: DeadLetterSink,
    topic_prefix: str = "",
    keys: KeyResolver | None = None,
) -> list[EventConsumer]:
    """Every consumer of the service (one Kafka consumer group each); building them
    touches neither database nor broker."""
    built = [
        # The experts read model, fed by the registry's member events.
        experts_consumer(sessions=sessions, dead_letters=dead_letters, topic_prefix=topic_prefix),
        # Proposals, missions and projects of erased or merged members, or of members who
        # withdrew their consent to be contacted for missions.
        records_consumer(
            sessions=sessions,
            outbox=outbox,
            dead_letters=dead_letters,
            topic_prefix=topic_prefix,
            erase={
                "proposals": proposals.erase_member,
                "missions": missions.erase_member,
                "projects": projects.erase_holder,
            },
            merge=[proposals.merge_member, missions.merge_member, projects.merge_holder],
            consent_withdrawn={"proposals": proposals.withdraw_for_consent},
        ),
    ]
    for consumer in built:
        consumer.keys = keys
    return built


def build_consumers(service: Matching, dead_letters: DeadLetterSink) -> list[EventConsumer]:
    """The service's consumers on its handles, sharing one cache of persons' data keys
    (crypto-shredding)."""
    keys = service.key_settings.resolver(SERVICE_NAME) if service.key_settings else None
    return consumers(
        sessions=service.sessions,
        outbox=service.outbox,
        dead_letters=dead_letters,
        topic_prefix=service.settings.topic_prefix,
        keys=keys,
    )


def periodic_tasks(service: Matching) -> list[Task]:
    """Jobs the worker runs on a timer."""
    return [expiry_task(service)]


def expiry_task(service: Matching) -> Task:
    """Expire needs past their date, at start and then every ``expiry_interval_seconds``."""

    async def job() -> None:
        async with service.sessions() as session, session.begin():
            expired = await expire_due(
                session, service.outbox, today=date.today(), on_close=service.need_closed
            )
        if expired:
            log.info("needs_expired", count=len(expired))

    return every(service.settings.expiry_interval_seconds, job)
