"""Use cases of difficulty reports: one transaction each, SQL and outbox writes.

The caller (``http.py``, the SLA job) has already decided who may act: these functions
check the status machine and the SLA, and write the change, its history row and its
event together.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, and_, func, literal_column, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from consular.reports import domain
from consular.reports.tables import (
    report_categories,
    report_category_versions,
    report_history,
    report_messages,
    reports,
)
from consular.sla import flag_overdue
from diaspora_events.contracts.consular import (
    ReportEscalatedV1,
    ReportFiledV1,
    ReportMessagePostedV1,
    ReportStatusChangedV1,
)
from diaspora_events.outbox import OutboxWriter

# The columns the policy's scopes compare (policy.yaml, resource consular_report).
SCOPE_COLUMNS: dict[str, Any] = {
    "reporter_id": reports.c.reporter_id,
    "reporter_subject": reports.c.reporter_subject,
    "embassy_id": reports.c.embassy_id,
}

SYSTEM_SUBJECT = "system:consular-sla"


class UnknownCategory(Exception):
    pass


class VersionConflict(Exception):
    def __init__(self, current: int) -> None:
        super().__init__(f"the current version is {current}")
        self.current = current


@dataclass(frozen=True)
class Actor:
    subject: str
    side: domain.Side


@dataclass(frozen=True)
class Filing:
    """Who files, for whom, with which consent (a focal point's filing only)."""

    reporter_id: UUID | None
    reporter_subject: str | None
    filed_by_subject: str
    filed_by_role: str
    consent_method: str | None = None
    consent_given_at: datetime | None = None


def subject_of(row: dict[str, Any]) -> UUID:
    """Whose data key seals the report's events: the reporter, or the report itself."""
    subject: UUID = row["reporter_id"] or row["id"]
    return subject


# --- categories ---------------------------------------------------------------------


async def categories(session: AsyncSession, *, include_inactive: bool) -> list[dict[str, Any]]:
    statement = select(report_categories).order_by(
        report_categories.c.position, report_categories.c.code
    )
    if not include_inactive:
        statement = statement.where(report_categories.c.active)
    return [dict(r) for r in (await session.execute(statement)).mappings()]


async def category(session: AsyncSession, code: str) -> dict[str, Any] | None:
    row = (
        (await session.execute(select(report_categories).where(report_categories.c.code == code)))
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


async def publish_category(
    session: AsyncSession,
    code: str,
    *,
    label_fr: str,
    label_en: str,
    active: bool,
    target_days: int,
    position: int,
    expected: int | None,
    actor: str,
    now: datetime,
) -> tuple[dict[str, Any], UUID]:
    """A new version of a category (version 1 of a new one), with its version row; an
    ``expected`` version (If-Match) other than the current raises VersionConflict."""
    current = (
        await session.execute(
            select(report_categories.c.version)
            .where(report_categories.c.code == code)
            .with_for_update()
        )
    ).scalar_one_or_none()
    values = {
        "label_fr": label_fr,
        "label_en": label_en,
        "active": active,
        "target_days": target_days,
        "position": position,
        "updated_at": now,
    }
    if current is None:
        if expected not in (None, 0):
            raise VersionConflict(0)
        version = 1
        await session.execute(report_categories.insert().values(code=code, version=1, **values))
    else:
        if expected is not None and expected != current:
            raise VersionConflict(current)
        version = current + 1
        await session.execute(
            update(report_categories)
            .where(report_categories.c.code == code)
            .values(version=version, **values)
        )
    version_id = uuid.uuid4()
    await session.execute(
        report_category_versions.insert().values(
            id=version_id,
            code=code,
            version=version,
            edited_by=actor,
            edited_at=now,
            **{k: v for k, v in values.items() if k != "updated_at"},
        )
    )
    found = await category(session, code)
    assert found is not None
    return found, version_id


# --- reports ------------------------------------------------------------------------


async def file_report(
    session: AsyncSession,
    outbox: OutboxWriter,
    filing: Filing,
    *,
    category_code: str,
    country: str,
    embassy_id: str,
    description: str,
    attachments: list[dict[str, Any]],
    now: datetime,
) -> dict[str, Any]:
    """A new report, routed to ``embassy_id``, due after its category's target days."""
    found = await category(session, category_code)
    if found is None or not found["active"]:
        raise UnknownCategory(category_code)
    report_id = uuid.uuid4()
    due = domain.due_at(now, found["target_days"])
    await session.execute(
        reports.insert().values(
            id=report_id,
            reporter_id=filing.reporter_id,
            reporter_subject=filing.reporter_subject,
            category=category_code,
            country=country,
            embassy_id=embassy_id,
            description=description,
            attachments=attachments,
            status="open",
            filed_by_subject=filing.filed_by_subject,
            filed_by_role=filing.filed_by_role,
            consent_method=filing.consent_method,
            consent_given_at=filing.consent_given_at,
            created_at=now,
            updated_at=now,
            due_at=due,
        )
    )
    on_behalf = filing.consent_method is not None
    await _history(
        session,
        report_id,
        "file",
        None,
        "open",
        "filed on the person's behalf, with their consent" if on_behalf else None,
        Actor(filing.filed_by_subject, "staff" if on_behalf else "reporter"),
        now,
    )
    row = await load(session, report_id, true())
    assert row is not None
    await outbox.add(
        session,
        ReportFiledV1(
            report_id=report_id,
            reporter_id=filing.reporter_id,
            subject_id=subject_of(row),
            category=category_code,
            country=country,
            embassy_id=embassy_id,
            filed_at=now,
            due_at=due,
            filed_on_behalf=on_behalf,
            consent_method=filing.consent_method,
            consent_given_at=filing.consent_given_at,
            account=description,
        ),
    )
    return row


async def load(
    session: AsyncSession, report_id: UUID, where: ColumnElement[bool], *, lock: bool = False
) -> dict[str, Any] | None:
    statement = select(reports).where(reports.c.id == report_id, where)
    if lock:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).mappings().first()
    return dict(row) if row is not None else None


async def history(session: AsyncSession, report_id: UUID) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(report_history)
        .where(report_history.c.report_id == report_id)
        .order_by(report_history.c.id)
    )
    return [dict(r) for r in rows.mappings()]


async def messages(session: AsyncSession, report_id: UUID) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(report_messages)
        .where(report_messages.c.report_id == report_id)
        .order_by(report_messages.c.id)
    )
    return [dict(r) for r in rows.mappings()]


async def _history(
    session: AsyncSession,
    report_id: UUID,
    action: str,
    from_status: str | None,
    to_status: str,
    reason: str | None,
    actor: Actor,
    at: datetime,
) -> None:
    await session.execute(
        report_history.insert().values(
            report_id=report_id,
            action=action,
            from_status=from_status,
            to_status=to_status,
            reason=reason,
            actor_subject=actor.subject,
            actor_role=actor.side,
            at=at,
        )
    )


async def _move(
    session: AsyncSession,
    outbox: OutboxWriter,
    row: dict[str, Any],
    step: domain.Transition,
    actor: Actor,
    reason: str | None,
    now: datetime,
) -> dict[str, Any]:
    status: domain.Status = row["status"]
    values: dict[str, Any] = {
        "status": step.target,
        "version": row["version"] + 1,
        "updated_at": now,
    }
    if step.target == "resolved":
        values["resolved_at"] = now
    elif step.action == "reopen":
        values["resolved_at"] = None
    await session.execute(update(reports).where(reports.c.id == row["id"]).values(**values))
    await _history(session, row["id"], step.action, status, step.target, reason, actor, now)
    await outbox.add(
        session,
        ReportStatusChangedV1(
            report_id=row["id"],
            reporter_id=row["reporter_id"],
            subject_id=subject_of(row),
            category=row["category"],
            embassy_id=row["embassy_id"],
            action=step.action,
            from_status=status,
            to_status=step.target,
            actor_role=actor.side,
            changed_at=now,
            reason=reason,
        ),
    )
    return {**row, **values}


async def apply_transition(
    session: AsyncSession,
    outbox: OutboxWriter,
    row: dict[str, Any],
    *,
    action: str,
    actor: Actor,
    reason: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Move a (locked) report along the status machine, with its history and event."""
    step = domain.transition(row["status"], action, actor.side, reason)
    return await _move(session, outbox, row, step, actor, reason, now)


async def post_message(
    session: AsyncSession,
    outbox: OutboxWriter,
    row: dict[str, Any],
    *,
    actor: Actor,
    body: str,
    now: datetime,
) -> dict[str, Any]:
    """A message on a (locked) report. The reporter's answer while they are waited for
    puts the report back in the staff's hands (``resume``)."""
    await session.execute(
        report_messages.insert().values(
            report_id=row["id"],
            author_side=actor.side,
            author_subject=actor.subject,
            body=body,
            at=now,
        )
    )
    await outbox.add(
        session,
        ReportMessagePostedV1(
            report_id=row["id"],
            reporter_id=row["reporter_id"],
            embassy_id=row["embassy_id"],
            author_side=actor.side,
            posted_at=now,
        ),
    )
    if actor.side == "reporter" and row["status"] == "waiting_for_reporter":
        return await _move(
            session,
            outbox,
            row,
            domain.BY_ACTION["resume"],
            actor,
            "the reporter answered",
            now,
        )
    values = {"version": row["version"] + 1, "updated_at": now}
    await session.execute(update(reports).where(reports.c.id == row["id"]).values(**values))
    return {**row, **values}


@dataclass(frozen=True)
class ReportFilters:
    status: Sequence[str] = ()
    category: str | None = None
    country: str | None = None
    overdue: bool | None = None
    escalated: bool | None = None


async def search(
    session: AsyncSession,
    where: ColumnElement[bool],
    filters: ReportFilters,
    *,
    now: datetime,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """The reports a decision reaches, filtered; oldest due first (the focal point's queue)."""
    conditions: list[ColumnElement[bool]] = [where]
    if filters.status:
        conditions.append(reports.c.status.in_(list(filters.status)))
    if filters.category:
        conditions.append(reports.c.category == filters.category)
    if filters.country:
        conditions.append(reports.c.country == filters.country)
    overdue = and_(reports.c.status.in_(sorted(domain.SLA_RUNNING)), reports.c.due_at < now)
    if filters.overdue is True:
        conditions.append(overdue)
    elif filters.overdue is False:
        conditions.append(~overdue)
    if filters.escalated is True:
        conditions.append(reports.c.escalated_at.is_not(None))
    elif filters.escalated is False:
        conditions.append(reports.c.escalated_at.is_(None))
    condition = and_(*conditions)
    total = (
        await session.execute(select(func.count()).select_from(reports).where(condition))
    ).scalar_one()
    rows = await session.execute(
        select(reports)
        .where(condition)
        .order_by(reports.c.due_at, reports.c.created_at, reports.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [dict(r) for r in rows.mappings()], int(total)


# --- the observatory's counts ---------------------------------------------------------

filing_month = func.to_char(func.timezone("UTC", reports.c.created_at), literal_column("'YYYY-MM'"))
DIMENSIONS: dict[str, Any] = {
    "country": reports.c.country,
    "category": reports.c.category,
    "month": filing_month,
}


async def counts(
    session: AsyncSession,
    dimensions: Sequence[str],
    *,
    category_code: str | None = None,
    country: str | None = None,
    month_from: str | None = None,
    month_to: str | None = None,
) -> dict[tuple[str, ...], int]:
    """Reports per cell of ``dimensions`` (each report in exactly one cell)."""
    columns = [DIMENSIONS[d].label(d) for d in dimensions]
    conditions: list[ColumnElement[bool]] = []
    if category_code:
        conditions.append(reports.c.category == category_code)
    if country:
        conditions.append(reports.c.country == country)
    if month_from:
        conditions.append(filing_month >= month_from)
    if month_to:
        conditions.append(filing_month <= month_to)
    statement = (
        select(*columns, func.count().label("n"))
        .where(and_(true(), *conditions))
        .group_by(*columns)
    )
    rows = (await session.execute(statement)).all()
    return {tuple(str(v) for v in r[:-1]): int(r[-1]) for r in rows}


# --- the worker's periodic job --------------------------------------------------------


async def escalate_overdue(
    session: AsyncSession, outbox: OutboxWriter, *, now: datetime, batch: int = 500
) -> list[UUID]:
    """Flag and escalate to the ministry (once) reports past their due date unresolved
    while the staff is to act."""
    rows = await flag_overdue(session, reports, domain.SLA_RUNNING, now=now, batch=batch)
    for row in rows:
        await _history(
            session,
            row["id"],
            "escalate",
            row["status"],
            row["status"],
            f"overdue since {row['due_at'].isoformat()}",
            Actor(SYSTEM_SUBJECT, "system"),
            now,
        )
        await outbox.add(
            session,
            ReportEscalatedV1(
                report_id=row["id"],
                reporter_id=row["reporter_id"],
                category=row["category"],
                country=row["country"],
                embassy_id=row["embassy_id"],
                status=row["status"],
                due_at=row["due_at"],
                escalated_at=now,
            ),
        )
    return [r["id"] for r in rows]
