"""Erasure (``registry.member.erased``) and retention of what consular keeps of a person.

What goes, what stays and why: docs/consular.md, "Erasure and retention". In short:

- the applicants read model row goes (``members.service.forget``, run by the consumer);
- appointments all go, a booked one giving its seat back first;
- applications without a decision (draft, submitted, under review, information
  requested, resubmitted, withdrawn, expired) go with their history;
- decided applications (approved, rejected, issued, collected) are the embassy's legal
  records: kept, pseudonymised (answers emptied, the account subject and the applicant's
  own words in the history replaced), with ``erased_at`` set; their credentials stay
  (the document as issued, on the revocation list while it can be shown);
- difficulty reports are kept for the observatory's counts, pseudonymised (text,
  attachments and messages gone, reporter unlinked, closed);
- the outbox copies of the events of the person's applications and reports go;
- the person's stored documents go through ``forget_documents`` (the uploads feature,
  handed in by bootstrap).

Every step runs in the consumer's transaction, which records the event in the inbox:
a redelivered erasure finds nothing left to do. The retention job (``purge_expired``)
deletes the kept records once their period is over.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from sqlalchemy import and_, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from consular.applications.tables import application_history, applications
from consular.appointments import service as appointments
from consular.credentials.tables import credentials
from consular.handover.tables import handovers
from consular.payments.tables import payments
from consular.reports.tables import report_history, report_messages, reports
from consular.tables import outbox

# What replaces an erased person's account subject where a NOT NULL column needs one.
ERASED_SUBJECT = "erased"
SYSTEM_SUBJECT = "system:consular-erasure"

# A decision was taken: the application is the embassy's legal record of it.
DECIDED: tuple[str, ...] = ("approved", "rejected", "issued", "collected")


class DocumentEraser(Protocol):
    """Removes the stored documents (uploads) of an erased member, in the erasure's
    transaction; what it may keep (the documents of a kept decision) is its to decide."""

    def __call__(self, session: AsyncSession, member_id: UUID) -> Awaitable[None]: ...


EraseStep = Callable[[AsyncSession, UUID], Awaitable[None]]


@dataclass(frozen=True)
class Erased:
    deleted_applications: int
    kept_applications: int
    appointments: int
    reports: int


async def erase_member(session: AsyncSession, member_id: UUID, now: datetime) -> Erased:
    """Everything consular holds on ``member_id`` but the read model's row (the consumer's
    own step), in the caller's transaction."""
    # Appointments first: deleting an application cascades to its appointments, which
    # would take the seats with them without giving them back.
    freed = await appointments.forget_applicant(session, member_id)
    # The outbox keeps the bytes of every event of the person's applications and reports
    # (keyed by their ids), published or not: they go, as the registry's do.
    keys = [
        str(i)
        for i in (
            await session.execute(
                select(applications.c.id)
                .where(applications.c.applicant_id == member_id)
                .union_all(select(reports.c.id).where(reports.c.reporter_id == member_id))
            )
        ).scalars()
    ]
    if keys:
        await session.execute(delete(outbox).where(outbox.c.key.in_(keys)))
    gone = await session.execute(
        delete(applications).where(
            applications.c.applicant_id == member_id, applications.c.status.not_in(DECIDED)
        )
    )
    kept_ids = list(
        (
            await session.execute(
                update(applications)
                .where(
                    applications.c.applicant_id == member_id,
                    applications.c.erased_at.is_(None),
                )
                .values(
                    answers={},
                    applicant_subject=ERASED_SUBJECT,
                    idempotency_key=None,
                    request_digest=None,
                    erased_at=now,
                    version=applications.c.version + 1,
                )
                .returning(applications.c.id)
            )
        ).scalars()
    )
    if kept_ids:
        # The applicant's own entries (their words, their account); staff's stay: they
        # are the decision's record.
        await session.execute(
            update(application_history)
            .where(
                application_history.c.application_id.in_(kept_ids),
                application_history.c.actor_role == "applicant",
            )
            .values(actor_subject=ERASED_SUBJECT, reason=None)
        )
        await session.execute(
            update(credentials)
            .where(credentials.c.application_id.in_(kept_ids))
            .values(holder_subject=ERASED_SUBJECT)
        )
    # Receipts are the embassy's accounting record and hand-over packages the record of
    # what was sent to the documentation authority: kept, unlinked from the account.
    for kept in (payments, handovers):
        await session.execute(
            update(kept)
            .where(kept.c.applicant_id == member_id)
            .values(applicant_subject=ERASED_SUBJECT)
        )
    report_count = await _pseudonymise_reports(session, member_id, now)
    return Erased(
        deleted_applications=int(getattr(gone, "rowcount", 0) or 0),
        kept_applications=len(kept_ids),
        appointments=freed,
        reports=report_count,
    )


async def _pseudonymise_reports(session: AsyncSession, member_id: UUID, now: datetime) -> int:
    """The person's difficulty reports stay counted (category, country, embassy, month)
    but say nothing of them any more; an open one is closed."""
    rows = (
        (
            await session.execute(
                select(reports.c.id, reports.c.status, reports.c.reporter_subject)
                .where(reports.c.reporter_id == member_id)
                .with_for_update()
            )
        )
        .mappings()
        .all()
    )
    if not rows:
        return 0
    ids = [r["id"] for r in rows]
    subjects = [r["reporter_subject"] for r in rows if r["reporter_subject"]]
    await session.execute(delete(report_messages).where(report_messages.c.report_id.in_(ids)))
    await session.execute(
        update(report_history).where(report_history.c.report_id.in_(ids)).values(reason=None)
    )
    if subjects:
        await session.execute(
            update(report_history)
            .where(
                report_history.c.report_id.in_(ids),
                report_history.c.actor_subject.in_(subjects),
            )
            .values(actor_subject=ERASED_SUBJECT)
        )
    own_subject = func.coalesce(reports.c.reporter_subject, "")
    for row in rows:
        if row["status"] != "closed":
            await session.execute(
                report_history.insert().values(
                    report_id=row["id"],
                    action="close",
                    from_status=row["status"],
                    to_status="closed",
                    reason="reporter erased",
                    actor_subject=SYSTEM_SUBJECT,
                    actor_role="system",
                    at=now,
                )
            )
    await session.execute(
        update(reports)
        .where(reports.c.id.in_(ids))
        .values(
            reporter_id=None,
            reporter_subject=None,
            description="",
            attachments=[],
            status="closed",
            # A focal point's subject stays (staff); the person's own goes.
            filed_by_subject=func.coalesce(
                func.nullif(reports.c.filed_by_subject, own_subject), ERASED_SUBJECT
            ),
            erased_at=now,
            updated_at=now,
            version=reports.c.version + 1,
        )
    )
    return len(ids)


def erasure_step(
    clock: Callable[[], datetime], forget_documents: DocumentEraser | None = None
) -> EraseStep:
    """The members consumer's erasure step: the person's documents (the uploads hook,
    when bootstrap gives one), then everything above."""

    async def step(session: AsyncSession, member_id: UUID) -> None:
        if forget_documents is not None:
            await forget_documents(session, member_id)
        await erase_member(session, member_id, clock())

    return step


# --- retention ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Purged:
    applications: int
    credentials: int
    reports: int


async def purge_expired(
    session: AsyncSession,
    *,
    now: datetime,
    decision_days: int,
    report_days: int,
    batch: int = 1000,
) -> Purged:
    """Delete the records kept after an erasure once their period is over: a decided
    application ``decision_days`` after its decision (with its history, and its
    credential once that has expired too: a credential still valid stays on the
    revocation list), a pseudonymised report ``report_days`` after it was filed."""
    decided_before = now - timedelta(days=decision_days)
    live_credential = exists().where(
        credentials.c.application_id == applications.c.id, credentials.c.expires_at >= now
    )
    due = list(
        (
            await session.execute(
                select(applications.c.id)
                .where(
                    applications.c.erased_at.is_not(None),
                    func.coalesce(applications.c.decided_at, applications.c.erased_at)
                    < decided_before,
                    ~live_credential,
                )
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )
    purged_credentials = 0
    if due:
        result = await session.execute(
            delete(credentials).where(credentials.c.application_id.in_(due))
        )
        purged_credentials = int(getattr(result, "rowcount", 0) or 0)
        await session.execute(delete(applications).where(applications.c.id.in_(due)))
    report_ids = list(
        (
            await session.execute(
                select(reports.c.id)
                .where(
                    and_(
                        reports.c.erased_at.is_not(None),
                        reports.c.created_at < now - timedelta(days=report_days),
                    )
                )
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )
    if report_ids:
        await session.execute(delete(reports).where(reports.c.id.in_(report_ids)))
    return Purged(applications=len(due), credentials=purged_credentials, reports=len(report_ids))


__all__ = ["DECIDED", "DocumentEraser", "erase_member", "erasure_step", "purge_expired"]
