"""Composition root: builds the service's handles, then its consumers and periodic jobs,
handing each its dependencies (nothing registers itself at import time).

- ``bootstrap``: settings, database, outbox, identity, audit trail.
- ``consumers``: the people read model's consumer of ``registry.members``, with the
  features' erasure and merge steps.
- ``periodic_tasks``: the jobs the worker runs on a timer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.consumer import DeadLetterSink, EventConsumer
from diaspora_events.contracts import ReturneesAuditRecordedV1
from diaspora_events.outbox import OutboxWriter
from diaspora_events.runtime import Task
from diaspora_events.shredding import KeyResolver, event_key_settings
from diaspora_identity.audit import AuditTrail, audit_event_factory
from diaspora_identity.http import Identity
from diaspora_service.db import make_engine, make_session_factory
from returnees import SERVICE_NAME
from returnees.countries import tables as countries_tables
from returnees.countries.consumer import build_consumer as countries_consumer
from returnees.members import tables as members_tables
from returnees.members.consumer import EraseStep, MergeStep
from returnees.members.consumer import build_consumer as members_consumer
from returnees.resources import Returnees
from returnees.settings import ReturneesSettings
from returnees.subscribers import tables as subscribers_tables
from returnees.tables import audit_log, metadata, outbox

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]

# Every feature's tables are on the one metadata (named here so that all are defined).
FEATURE_TABLES = (members_tables, countries_tables, subscribers_tables)

# The event published for each audit entry (its fields are the entry's).
audit_event = audit_event_factory(ReturneesAuditRecordedV1)

# What each feature does when a member is erased or merged (before the read model's row
# goes), in this order.
ERASE_STEPS: list[EraseStep] = []
MERGE_STEPS: list[MergeStep] = []


def utc_now() -> datetime:
    return datetime.now(UTC)


def bootstrap(settings: ReturneesSettings | None = None) -> Returnees:
    """The service's handles."""
    settings = settings or ReturneesSettings()
    engine = make_engine(settings.async_database_url)
    key_settings = event_key_settings("RETURNEES")
    writer = OutboxWriter(
        outbox, source=settings.event_source, keys=key_settings.resolver(SERVICE_NAME, ttl=0.0)
    )
    return Returnees(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        outbox=writer,
        identity=Identity.from_settings(settings),
        audit=AuditTrail(audit_log, writer, audit_event),
        key_settings=key_settings,
    )


def consumers(
    *,
    sessions: async_sessionmaker[AsyncSession],
    dead_letters: DeadLetterSink,
    topic_prefix: str = "",
    keys: KeyResolver | None = None,
) -> list[EventConsumer]:
    """Every consumer of the service (one Kafka consumer group each); building them
    touches neither database nor broker."""
    return [
        members_consumer(
            sessions=sessions,
            dead_letters=dead_letters,
            topic_prefix=topic_prefix,
            keys=keys,
            erase_steps=ERASE_STEPS,
            merge_steps=MERGE_STEPS,
        ),
        # Country lists: consular's difficulty reports counted as watchlist evidence.
        countries_consumer(
            sessions=sessions, dead_letters=dead_letters, topic_prefix=topic_prefix, keys=keys
        ),
    ]


def build_consumers(service: Returnees, dead_letters: DeadLetterSink) -> list[EventConsumer]:
    """The service's consumers on its handles, with one cache of persons' data keys."""
    keys = service.key_settings.resolver(SERVICE_NAME) if service.key_settings else None
    return consumers(
        sessions=service.sessions,
        dead_letters=dead_letters,
        topic_prefix=service.settings.topic_prefix,
        keys=keys,
    )


def periodic_tasks(service: Returnees, clock: Clock = utc_now) -> list[Task]:
    """Jobs the worker runs on a timer (each feature's, built with ``every``)."""
    return []


__all__ = ["metadata"]
