"""Composition root: builds the service's handles, then its consumer and periodic job,
handing each its dependencies (nothing registers itself at import time).

- ``bootstrap``: settings, database, outbox, identity, audit trail.
- ``consumers``: the applicants read model's consumer of ``registry.members``, with the
  erasure step (``consular.erasure``: the uploads hook ``document_eraser``, then
  appointments, applications, reports) and the merge steps.
- ``periodic_tasks``: the SLA job (overdue applications flagged and escalated; stale
  drafts and unanswered requests for information expired) and the difficulty reports'
  SLA job (overdue reports escalated to the ministry); the appointments' reminders; the
  retention job (records kept after an erasure deleted past their period).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from consular import SERVICE_NAME
from consular.applications import service as applications
from consular.appointments import service as appointments
from consular.appointments import tables as appointments_tables
from consular.catalogue import tables as catalogue_tables
from consular.credentials import service as credentials
from consular.credentials import tables as credentials_tables
from consular.documents import service as documents
from consular.documents import tables as documents_tables
from consular.erasure import service as erasure
from consular.handover import service as handover
from consular.handover import tables as handover_tables
from consular.handover.domain import DocumentRef as HandoverDocument
from consular.members import tables as members_tables
from consular.members.consumer import build_consumer as members_consumer
from consular.payments import service as payments
from consular.payments import tables as payments_tables
from consular.reports import service as reports
from consular.reports import tables as reports_tables
from consular.resources import Consular, DocumentStore, IssuedHook, TransitionHook
from consular.settings import ConsularSettings
from consular.signing_keys import KeyRing, load_key_ring
from consular.tables import audit_log, metadata, outbox
from diaspora_events.consumer import DeadLetterSink, EventConsumer
from diaspora_events.contracts import ConsularAuditRecordedV1
from diaspora_events.outbox import OutboxWriter
from diaspora_events.runtime import Task, every
from diaspora_events.shredding import KeyResolver, event_key_settings
from diaspora_identity.audit import AuditTrail, audit_event_factory
from diaspora_identity.http import Identity
from diaspora_service.db import make_engine, make_session_factory

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]

# Every feature's tables are on the one metadata (named here so that all are defined).
FEATURE_TABLES = (
    catalogue_tables,
    members_tables,
    applications,
    credentials_tables,
    appointments_tables,
    reports_tables,
    payments_tables,
    handover_tables,
    documents_tables,
)

# The event published for each audit entry (its fields are the entry's).
audit_event = audit_event_factory(ConsularAuditRecordedV1)


def utc_now() -> datetime:
    return datetime.now(UTC)


def bootstrap(settings: ConsularSettings | None = None, *, signing: bool = True) -> Consular:
    """The service's handles. ``signing``: load the credential signing key (the API, which
    issues and publishes credentials); the relay and the worker never hold it."""
    settings = settings or ConsularSettings()
    engine = make_engine(settings.async_database_url)
    key_settings = event_key_settings("CONSULAR")
    writer = OutboxWriter(
        outbox, source=settings.event_source, keys=key_settings.resolver(SERVICE_NAME, ttl=0.0)
    )
    credential_keys = load_key_ring(settings) if signing else None
    return Consular(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        outbox=writer,
        identity=Identity.from_settings(settings),
        audit=AuditTrail(audit_log, writer, audit_event),
        key_settings=key_settings,
        credential_keys=credential_keys,
        on_issued=credential_hook(credential_keys, settings) if credential_keys else None,
        on_closed=release_seat,
        on_transition=transition_hook(credential_keys, settings),
        documents=document_store(settings),
    )


async def release_seat(
    session: AsyncSession, outbox: OutboxWriter, application: dict[str, Any], now: datetime
) -> None:
    """What an application's withdrawal or expiry does besides its transition: its booked
    appointment is cancelled and the seat given back, in the same transaction."""
    await appointments.release_for_application(
        session, outbox, application["id"], reason=f"application {application['status']}", now=now
    )


def transition_hook(keys: KeyRing | None, settings: ConsularSettings) -> TransitionHook:
    """What an officer's or the authority's transition does besides itself, in its
    transaction: payments refuse an approval while the fee is unpaid; then a passport or
    identity card preparation approved gets its signed hand-over package (the API only:
    it holds the key), listing the application's uploaded documents."""
    steps: list[TransitionHook] = [payments.require_paid_before_approval]
    if keys is not None:
        steps.append(handover.on_approval(keys, settings.credential_issuer, application_documents))

    async def on_transition(
        session: AsyncSession,
        outbox: OutboxWriter,
        before: dict[str, Any],
        after: dict[str, Any],
        action: str,
        now: datetime,
    ) -> None:
        for step in steps:
            await step(session, outbox, before, after, action, now)

    return on_transition


def document_store(settings: ConsularSettings) -> DocumentStore:
    """The uploaded documents' store, opened on first use (the API's uploads and downloads;
    the worker's erasure of a member's documents). In production a local folder or a
    plain-http S3 endpoint is refused at start."""
    problems = settings.documents.production_problems()
    if settings.environment == "production" and problems:
        raise RuntimeError("; ".join(problems))
    return DocumentStore(settings.documents)


def credential_hook(keys: KeyRing, settings: ConsularSettings) -> IssuedHook:
    """What an application's `issue` does besides its transition: sign its credential (a
    consular card or an e-visa) in the same transaction."""

    async def on_issued(
        session: AsyncSession, outbox: OutboxWriter, application: dict[str, Any], now: datetime
    ) -> None:
        await credentials.issue(session, outbox, application, now, keys=keys, settings=settings)

    return on_issued


def consumers(
    *,
    sessions: async_sessionmaker[AsyncSession],
    dead_letters: DeadLetterSink,
    topic_prefix: str = "",
    keys: KeyResolver | None = None,
    forget_documents: erasure.DocumentEraser | None = None,
    clock: Clock = utc_now,
) -> list[EventConsumer]:
    """Every consumer of the service (one Kafka consumer group each); building them
    touches neither database nor broker. ``forget_documents``: the uploads feature's
    removal of an erased member's stored documents, run first in the erasure step."""
    return [
        members_consumer(
            sessions=sessions,
            dead_letters=dead_letters,
            topic_prefix=topic_prefix,
            keys=keys,
            erase_steps=[erasure.erasure_step(clock, forget_documents)],
            merge_steps=[
                applications.merge_applicant,
                credentials.merge_holder,
                documents.merge_member,
            ],
        )
    ]


def build_consumers(service: Consular, dead_letters: DeadLetterSink) -> list[EventConsumer]:
    """The service's consumers on its handles, with one cache of persons' data keys."""
    keys = service.key_settings.resolver(SERVICE_NAME) if service.key_settings else None
    return consumers(
        sessions=service.sessions,
        dead_letters=dead_letters,
        topic_prefix=service.settings.topic_prefix,
        keys=keys,
        forget_documents=document_eraser(service),
    )


def document_eraser(service: Consular) -> erasure.DocumentEraser | None:
    """What removes an erased member's stored documents (rows and objects), run first in
    the erasure step, in the consumer's transaction: every one of them, those of the
    decisions kept pseudonymised too (docs/consular.md, "Erasure and retention")."""
    store = service.documents
    if store is None:
        return None

    async def forget(session: AsyncSession, member_id: UUID) -> None:
        await documents.erase_member_documents(session, await store.get(), member_id)

    return forget


async def application_documents(
    session: AsyncSession, application: dict[str, Any]
) -> list[HandoverDocument]:
    """The uploaded documents of an application, as a hand-over package lists them."""
    return [
        HandoverDocument(
            id=row["id"],
            kind=row["kind"],
            content_type=row["content_type"],
            size=row["size"],
            sha256=row["sha256"],
        )
        for row in await documents.listing(session, "application", application["id"])
    ]


@dataclass(frozen=True)
class SlaOutcome:
    escalated: list[UUID]
    expired: list[UUID]


async def run_sla_once(service: Consular, now: datetime) -> SlaOutcome:
    """One pass of the SLA job, in one transaction."""
    settings = service.settings
    async with service.sessions() as session, session.begin():
        escalated = await applications.escalate_overdue(session, service.outbox, now=now)
        expired = await applications.expire_stale(
            session,
            service.outbox,
            now=now,
            draft_days=settings.draft_expiry_days,
            information_days=settings.information_expiry_days,
            on_closed=service.on_closed,
        )
    return SlaOutcome(escalated=escalated, expired=expired)


def sla_task(service: Consular, clock: Clock = utc_now) -> Task:
    """The SLA job at start, then every ``sla_interval_seconds``."""

    async def job() -> None:
        outcome = await run_sla_once(service, clock())
        if outcome.escalated or outcome.expired:
            log.info("sla_pass", escalated=len(outcome.escalated), expired=len(outcome.expired))

    return every(service.settings.sla_interval_seconds, job)


async def run_reports_sla_once(service: Consular, now: datetime) -> list[UUID]:
    """One pass of the difficulty reports' SLA job (in one transaction): the reports
    escalated to the ministry."""
    async with service.sessions() as session, session.begin():
        return await reports.escalate_overdue(session, service.outbox, now=now)


def reports_sla_task(service: Consular, clock: Clock = utc_now) -> Task:
    """The reports' SLA job at start, then every ``sla_interval_seconds``."""

    async def job() -> None:
        escalated = await run_reports_sla_once(service, clock())
        if escalated:
            log.info("reports_sla_pass", escalated=len(escalated))

    return every(service.settings.sla_interval_seconds, job)


def periodic_tasks(service: Consular, clock: Clock = utc_now) -> list[Task]:
    """Jobs the worker runs on a timer."""
    return [
        sla_task(service, clock),
        reminder_task(service, clock),
        reports_sla_task(service, clock),
        retention_task(service, clock),
    ]


# --- retention of what erasure kept -------------------------------------------------------


async def run_retention_once(service: Consular, now: datetime) -> erasure.Purged:
    """One pass of the retention job, in one transaction."""
    settings = service.settings
    async with service.sessions() as session, session.begin():
        return await erasure.purge_expired(
            session,
            now=now,
            decision_days=settings.retention_decision_days,
            report_days=settings.retention_report_days,
        )


def retention_task(service: Consular, clock: Clock = utc_now) -> Task:
    """The retention job at start, then every ``retention_interval_seconds``."""

    async def job() -> None:
        purged = await run_retention_once(service, clock())
        if purged.applications or purged.reports:
            log.info(
                "retention_pass",
                applications=purged.applications,
                credentials=purged.credentials,
                reports=purged.reports,
            )

    return every(service.settings.retention_interval_seconds, job)


# --- appointments' reminders ------------------------------------------------------------

REMINDER_INTERVAL_SECONDS = 60.0


async def run_reminders_once(service: Consular, now: datetime) -> list[UUID]:
    """One pass of the reminder job, in one transaction: reminder-due once per booking."""
    async with service.sessions() as session, session.begin():
        return await appointments.send_reminders(session, service.outbox, now=now)


def reminder_task(
    service: Consular, clock: Clock = utc_now, interval: float = REMINDER_INTERVAL_SECONDS
) -> Task:
    """The appointments' reminder job at start, then every ``interval`` seconds."""

    async def job() -> None:
        sent = await run_reminders_once(service, clock())
        if sent:
            log.info("appointment_reminders", due=len(sent))

    return every(interval, job)


__all__ = ["metadata"]
