"""Use cases of cases: one transaction each, SQL and outbox writes.

The caller (``http.py``, the consular consumer, the follow-up job) has decided who may
act and sealed the sensitive fields; these functions check the state machine and write
the change and its event together.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

import uuid_utils.compat as uuid_compat
from sqlalchemy import ColumnElement, Date, and_, cast, delete, func, select, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.contracts import (
    CaseAssignedV1,
    CaseFollowUpOverdueV1,
    CaseOpenedV1,
    CaseStatusChangedV1,
)
from diaspora_events.outbox import OutboxWriter
from returnees.cases import domain
from returnees.cases.tables import cases, follow_ups

# The columns the policy's scopes compare (policy.yaml, resource returnee_case).
SCOPE_COLUMNS: dict[str, Any] = {
    "member_id": cases.c.member_id,
    "returnee_subject": cases.c.returnee_subject,
}


def subject_of(row: dict[str, Any]) -> UUID:
    """Whose data key seals the case's events and sensitive fields: the returnee (member
    id), or the case itself for a person without a registry record."""
    subject: UUID = row["member_id"] or row["id"]
    return subject


def new_case_id() -> UUID:
    return uuid_compat.uuid7()


async def open_case(
    session: AsyncSession,
    outbox: OutboxWriter,
    *,
    case_id: UUID,
    member_id: UUID | None,
    returnee_subject: str | None,
    origin: domain.Origin,
    opened_by: str,
    now: datetime,
    application_id: UUID | None = None,
    expected_arrival: date | None = None,
    return_date: date | None = None,
    country_from: str | None = None,
    reason: str | None = None,
    prefecture: str | None = None,
    region: str | None = None,
    sensitive: bytes | None = None,
    sealed_subject: UUID | None = None,
) -> dict[str, Any] | None:
    """The new case, or None when the consular application already has one (a replayed
    laissez-passer)."""
    status = domain.initial_status(origin, return_date)
    statement = (
        insert(cases)
        .values(
            id=case_id,
            member_id=member_id,
            returnee_subject=returnee_subject,
            origin=origin,
            application_id=application_id,
            status=status,
            opened_by=opened_by,
            opened_at=now,
            updated_at=now,
            expected_arrival=expected_arrival,
            return_date=return_date,
            country_from=country_from,
            reason=reason,
            prefecture=prefecture,
            region=region,
            sensitive=sensitive,
            sealed_subject=sealed_subject,
        )
        .on_conflict_do_nothing(index_elements=[cases.c.application_id])
        .returning(*cases.c)
    )
    row = (await session.execute(statement)).mappings().first()
    if row is None:
        return None
    case = dict(row)
    if return_date is not None:
        await _plan_follow_ups(session, case_id, return_date)
    await outbox.add(
        session,
        CaseOpenedV1(
            case_id=case_id,
            member_id=member_id,
            subject_id=subject_of(case),
            origin=origin,
            status=status,
            application_id=application_id,
            opened_at=now,
            expected_arrival=expected_arrival,
            return_date=return_date,
            country_from=country_from,
        ),
    )
    return case


async def _plan_follow_ups(session: AsyncSession, case_id: UUID, return_date: date) -> None:
    """The 3, 6 and 12 months follow-ups from the return date (moved if it changes, as
    long as they are not recorded)."""
    for months, due_on in domain.follow_up_dates(return_date).items():
        statement = insert(follow_ups).values(case_id=case_id, months=months, due_on=due_on)
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[follow_ups.c.case_id, follow_ups.c.months],
                set_={"due_on": due_on, "overdue_at": None},
                where=follow_ups.c.done_on.is_(None),
            )
        )


async def load(
    session: AsyncSession,
    case_id: UUID,
    where: ColumnElement[bool] | None = None,
    *,
    lock: bool = False,
) -> dict[str, Any] | None:
    query = select(cases).where(cases.c.id == case_id, where if where is not None else true())
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).mappings().first()
    return dict(row) if row is not None else None


async def search(
    session: AsyncSession,
    where: ColumnElement[bool],
    *,
    assigned_to: str | None = None,
    unassigned: bool = False,
    status: Sequence[str] = (),
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    conditions = [where]
    if assigned_to is not None:
        conditions.append(cases.c.assigned_to == assigned_to)
    if unassigned:
        conditions.append(cases.c.assigned_to.is_(None))
    if status:
        conditions.append(cases.c.status.in_(list(status)))
    query = (
        select(cases)
        .where(and_(*conditions))
        .order_by(cases.c.opened_at.desc(), cases.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [dict(r) for r in (await session.execute(query)).mappings()]


async def follow_ups_of(session: AsyncSession, case_id: UUID) -> list[dict[str, Any]]:
    query = select(follow_ups).where(follow_ups.c.case_id == case_id).order_by(follow_ups.c.months)
    return [dict(r) for r in (await session.execute(query)).mappings()]


async def transition(
    session: AsyncSession,
    outbox: OutboxWriter,
    row: dict[str, Any],
    action: domain.Action,
    changes: dict[str, Any],
    *,
    now: datetime,
) -> dict[str, Any]:
    """Apply ``action`` to the locked ``row`` with its ``changes`` (raises
    :class:`domain.TransitionRefused`)."""
    to_status = domain.next_status(row["status"], action)
    values = {**changes, "status": to_status, "updated_at": now, "version": row["version"] + 1}
    if to_status == "closed":
        values["closed_at"] = now
    updated = (
        (
            await session.execute(
                update(cases).where(cases.c.id == row["id"]).values(**values).returning(*cases.c)
            )
        )
        .mappings()
        .one()
    )
    case = dict(updated)
    if changes.get("return_date") is not None:
        await _plan_follow_ups(session, case["id"], case["return_date"])
    await outbox.add(
        session,
        CaseStatusChangedV1(
            case_id=case["id"],
            member_id=case["member_id"],
            subject_id=subject_of(case),
            action=action,
            from_status=row["status"],
            to_status=to_status,
            changed_at=now,
            outcome=case["outcome"] if to_status == "closed" else None,
        ),
    )
    return case


async def assign(
    session: AsyncSession,
    outbox: OutboxWriter,
    row: dict[str, Any],
    case_worker: str,
    *,
    now: datetime,
) -> dict[str, Any]:
    updated = (
        (
            await session.execute(
                update(cases)
                .where(cases.c.id == row["id"])
                .values(assigned_to=case_worker, updated_at=now, version=row["version"] + 1)
                .returning(*cases.c)
            )
        )
        .mappings()
        .one()
    )
    case = dict(updated)
    await outbox.add(
        session,
        CaseAssignedV1(
            case_id=case["id"],
            member_id=case["member_id"],
            subject_id=subject_of(case),
            assigned_to=case_worker,
            assigned_at=now,
        ),
    )
    return case


async def record_follow_up(
    session: AsyncSession,
    case_id: UUID,
    months: int,
    *,
    done_on: date,
    notes: str | None,
    recorded_by: str,
) -> dict[str, Any] | None:
    """The follow-up recorded (None: the case has no such follow-up yet)."""
    row = (
        (
            await session.execute(
                update(follow_ups)
                .where(follow_ups.c.case_id == case_id, follow_ups.c.months == months)
                .values(done_on=done_on, notes=notes, recorded_by=recorded_by)
                .returning(*follow_ups.c)
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


async def flag_overdue_follow_ups(
    session: AsyncSession, outbox: OutboxWriter, *, today: date, now: datetime
) -> list[tuple[UUID, int]]:
    """Flag (once) every follow-up due before ``today`` and not recorded, of a case still
    being worked (not closed or cancelled); one event each."""
    active = select(cases.c.id).where(cases.c.status.not_in(["closed", "cancelled"]))
    flagged = (
        (
            await session.execute(
                update(follow_ups)
                .where(
                    follow_ups.c.done_on.is_(None),
                    follow_ups.c.overdue_at.is_(None),
                    follow_ups.c.due_on < today,
                    follow_ups.c.case_id.in_(active),
                )
                .values(overdue_at=now)
                .returning(follow_ups.c.case_id, follow_ups.c.months, follow_ups.c.due_on)
            )
        )
        .mappings()
        .all()
    )
    if not flagged:
        return []
    owners = {
        r["id"]: r
        for r in (
            await session.execute(
                select(cases.c.id, cases.c.member_id).where(
                    cases.c.id.in_([f["case_id"] for f in flagged])
                )
            )
        ).mappings()
    }
    for f in flagged:
        owner = owners[f["case_id"]]
        await outbox.add(
            session,
            CaseFollowUpOverdueV1(
                case_id=f["case_id"],
                member_id=owner["member_id"],
                subject_id=owner["member_id"] or f["case_id"],
                months=f["months"],
                due_on=f["due_on"],
                flagged_at=now,
            ),
        )
    return [(f["case_id"], f["months"]) for f in flagged]


async def erase_person(session: AsyncSession, member_id: UUID) -> None:
    """Erasure step (``registry.member.erased``): the person's cases lose everything that
    identifies them or is about their health and life (sensitive fields, free texts,
    milestones, follow-ups, the day of return, the link to the person and their account); what stays
    is anonymous (origin, status, country returned from, reason, needs areas met or not,
    return month, outcome code) for the observatory's counts (docs/returnees.md)."""
    ids = select(cases.c.id).where(cases.c.member_id == member_id)
    await session.execute(delete(follow_ups).where(follow_ups.c.case_id.in_(ids)))
    await session.execute(
        update(cases)
        .where(cases.c.member_id == member_id)
        .values(
            member_id=None,
            returnee_subject=None,
            sensitive=None,
            sealed_subject=None,
            outcome_notes=None,
            milestones=[],
            expected_arrival=None,
            # Where they settle: the region stays (a count by region), the prefecture goes.
            prefecture=None,
            # The month of return stays (returns by month); the day goes.
            return_date=cast(func.date_trunc("month", cases.c.return_date), Date),
        )
    )


async def merge_person(session: AsyncSession, absorbed: UUID, survivor: UUID) -> None:
    """Merge step: the absorbed record's cases follow the survivor."""
    await session.execute(
        update(cases).where(cases.c.member_id == absorbed).values(member_id=survivor)
    )
