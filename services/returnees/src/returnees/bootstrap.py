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
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.consumer import DeadLetterSink, EventConsumer
from diaspora_events.contracts import ReturneesAuditRecordedV1
from diaspora_events.outbox import OutboxWriter
from diaspora_events.runtime import Task, every
from diaspora_events.shredding import (
    EventKeySettings,
    HttpKeyFetcher,
    KeyResolver,
    event_key_settings,
)
from diaspora_identity.audit import AuditTrail, audit_event_factory
from diaspora_identity.http import Identity
from diaspora_service.db import make_engine, make_session_factory
from returnees import SERVICE_NAME
from returnees.agreements import tables as agreements_tables
from returnees.cases import service as cases
from returnees.cases import tables as cases_tables
from returnees.cases.consumer import build_consumer as cases_consumer
from returnees.countries import tables as countries_tables
from returnees.countries.consumer import build_consumer as countries_consumer
from returnees.members import tables as members_tables
from returnees.members.consumer import EraseStep, MergeStep
from returnees.members.consumer import build_consumer as members_consumer
from returnees.partners import tables as partners_tables
from returnees.referrals import service as referrals
from returnees.referrals import tables as referrals_tables
from returnees.resources import Returnees
from returnees.settings import ReturneesSettings
from returnees.subscribers import tables as subscribers_tables
from returnees.tables import audit_log, metadata, outbox

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]

# Every feature's tables are on the one metadata (named here so that all are defined).
FEATURE_TABLES = (
    members_tables,
    cases_tables,
    agreements_tables,
    partners_tables,
    referrals_tables,
    countries_tables,
    subscribers_tables,
)

# The event published for each audit entry (its fields are the entry's).
audit_event = audit_event_factory(ReturneesAuditRecordedV1)

# What each feature does when a member is erased or merged (before the read model's row
# goes), in this order.
ERASE_STEPS: list[EraseStep] = [cases.erase_person, referrals.erase_returnee]
MERGE_STEPS: list[MergeStep] = [cases.merge_person, referrals.merge_returnee]


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
        case_keys=case_keys(key_settings),
        case_referrals=referrals.of_case,
    )


def case_keys(key_settings: EventKeySettings) -> KeyResolver:
    """Persons' data keys from the registry's key service, for the sensitive fields of
    cases (sealed whether or not events are: they are data at rest). TTL 0: no key stays
    in the process's memory after the request."""
    fetch = HttpKeyFetcher(
        key_settings.event_keys_url,
        key_settings.client_credentials(SERVICE_NAME),
        timeout=key_settings.event_keys_timeout_seconds,
    )
    return KeyResolver(fetch, ttl=0.0)


def consumers(
    *,
    sessions: async_sessionmaker[AsyncSession],
    dead_letters: DeadLetterSink,
    topic_prefix: str = "",
    keys: KeyResolver | None = None,
    outbox_writer: OutboxWriter | None = None,
) -> list[EventConsumer]:
    """Every consumer of the service (one Kafka consumer group each); building them
    touches neither database nor broker."""
    writer = outbox_writer or OutboxWriter(outbox, source=f"/tg/diaspora/{SERVICE_NAME}")
    return [
        members_consumer(
            sessions=sessions,
            dead_letters=dead_letters,
            topic_prefix=topic_prefix,
            keys=keys,
            erase_steps=ERASE_STEPS,
            merge_steps=MERGE_STEPS,
        ),
        cases_consumer(
            sessions=sessions,
            dead_letters=dead_letters,
            outbox=writer,
            topic_prefix=topic_prefix,
            keys=keys,
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
        outbox_writer=service.outbox,
    )


async def run_follow_ups_once(service: Returnees, now: datetime) -> list[tuple[UUID, int]]:
    """One pass of the follow-up job (one transaction): the follow-ups flagged overdue."""
    async with service.sessions() as session, session.begin():
        return await cases.flag_overdue_follow_ups(
            session, service.outbox, today=now.date(), now=now
        )


def follow_ups_task(service: Returnees, clock: Clock = utc_now) -> Task:
    """The overdue follow-ups job at start, then every ``jobs_interval_seconds``."""

    async def job() -> None:
        flagged = await run_follow_ups_once(service, clock())
        if flagged:
            log.info("follow_ups_overdue", flagged=len(flagged))

    return every(service.settings.jobs_interval_seconds, job)


# --- referrals' SLA (partners and referrals) --------------------------------------------


async def run_referrals_sla_once(service: Returnees, now: datetime) -> list[tuple[UUID, str]]:
    """One pass of the referrals' SLA job (one transaction): the referrals escalated to
    the ministry, with the stage whose deadline passed."""
    async with service.sessions() as session, session.begin():
        flagged = await referrals.escalate_overdue(session, service.outbox, now=now)
    return [(referral_id, stage) for referral_id, stage in flagged]


def referrals_sla_task(service: Returnees, clock: Clock = utc_now) -> Task:
    """The referrals' SLA job at start, then every ``jobs_interval_seconds``."""

    async def job() -> None:
        escalated = await run_referrals_sla_once(service, clock())
        if escalated:
            log.info("referrals_sla_pass", escalated=len(escalated))

    return every(service.settings.jobs_interval_seconds, job)


def periodic_tasks(service: Returnees, clock: Clock = utc_now) -> list[Task]:
    """Jobs the worker runs on a timer (each feature's, built with ``every``)."""
    return [follow_ups_task(service, clock), referrals_sla_task(service, clock)]


__all__ = ["metadata"]
