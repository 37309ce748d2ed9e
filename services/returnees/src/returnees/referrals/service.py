"""Use cases of referrals: one transaction each, SQL and outbox writes.

The caller (``http.py``, the SLA job) has already decided who may act: these functions
check the partner's offer and coverage, the status machine and the SLA, and write the
change, its history row and its event together.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, and_, func, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.contracts.returnees import (
    ReferralCreatedV1,
    ReferralEscalatedV1,
    ReferralStatusChangedV1,
)
from diaspora_events.outbox import OutboxWriter
from returnees.partners import domain as partners_domain
from returnees.partners.tables import partners
from returnees.referrals import domain
from returnees.referrals.tables import referral_history, referrals

# The columns the policy's scopes compare (policy.yaml, resource returnee_referral).
SCOPE_COLUMNS: dict[str, Any] = {
    "member_id": referrals.c.member_id,
    "partner_org": referrals.c.partner_org,
}

SYSTEM_SUBJECT = "system:returnees-referrals-sla"


class DuplicateOpenReferral(Exception):
    """The case's need is already referred to this partner (still open)."""


@dataclass(frozen=True)
class Actor:
    subject: str
    side: domain.Side


@dataclass(frozen=True)
class Referral:
    """What a case worker asks: refer ``need`` of ``case_id`` to a partner."""

    case_id: UUID
    member_id: UUID | None
    need: str
    priority: str
    prefecture: str
    language: str | None
    note: str | None


@dataclass(frozen=True)
class Sla:
    acknowledge_days: int
    complete_days: int


def subject_of(row: dict[str, Any]) -> UUID:
    """Whose data key seals the referral's events: the returnee, or the referral itself."""
    subject: UUID = row["member_id"] or row["id"]
    return subject


async def refer(
    session: AsyncSession,
    outbox: OutboxWriter,
    partner: dict[str, Any],
    referral: Referral,
    *,
    actor: str,
    sla: Sla,
    now: datetime,
) -> dict[str, Any]:
    """A new referral to ``partner`` (its row), if it offers the need in the prefecture
    (raises partners.domain.NotCovered naming why, or DuplicateOpenReferral)."""
    partners_domain.check_can_take(
        name=partner["name"],
        active=partner["active"],
        services=partner["services"],
        regions=partner["regions"],
        prefectures=partner["prefectures"],
        need=referral.need,
        prefecture=referral.prefecture,
    )
    slug, region = partners_domain.prefecture_slug(referral.prefecture)
    due = domain.deadlines(
        now, acknowledge_days=sla.acknowledge_days, complete_days=sla.complete_days
    )
    referral_id = uuid.uuid4()
    try:
        async with session.begin_nested():
            await session.execute(
                referrals.insert().values(
                    id=referral_id,
                    case_id=referral.case_id,
                    member_id=referral.member_id,
                    partner_id=partner["id"],
                    partner_org=partner["partner_org"],
                    need=referral.need,
                    priority=referral.priority,
                    prefecture=slug,
                    region=region,
                    language=referral.language,
                    note=referral.note,
                    status="referred",
                    referred_by=actor,
                    referred_at=now,
                    acknowledge_by=due.acknowledge_by,
                    complete_by=due.complete_by,
                    updated_at=now,
                )
            )
    except IntegrityError:
        raise DuplicateOpenReferral(str(referral.case_id)) from None
    await _history(session, referral_id, "refer", None, "referred", None, Actor(actor, "cell"), now)
    row = await load(session, referral_id, true())
    assert row is not None
    await outbox.add(
        session,
        ReferralCreatedV1(
            referral_id=referral_id,
            case_id=referral.case_id,
            member_id=referral.member_id,
            subject_id=subject_of(row),
            partner_id=partner["id"],
            partner_org=partner["partner_org"],
            need=referral.need,
            priority=referral.priority,
            prefecture=slug,
            region=region,
            referred_at=now,
            acknowledge_by=due.acknowledge_by,
            complete_by=due.complete_by,
            note=referral.note,
        ),
    )
    return row


async def load(
    session: AsyncSession, referral_id: UUID, where: ColumnElement[bool], *, lock: bool = False
) -> dict[str, Any] | None:
    statement = select(referrals).where(referrals.c.id == referral_id, where)
    if lock:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).mappings().first()
    return dict(row) if row is not None else None


async def history(session: AsyncSession, referral_id: UUID) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(referral_history)
        .where(referral_history.c.referral_id == referral_id)
        .order_by(referral_history.c.id)
    )
    return [dict(r) for r in rows.mappings()]


async def _history(
    session: AsyncSession,
    referral_id: UUID,
    action: str,
    from_status: str | None,
    to_status: str,
    reason: str | None,
    actor: Actor,
    now: datetime,
) -> None:
    await session.execute(
        referral_history.insert().values(
            referral_id=referral_id,
            action=action,
            from_status=from_status,
            to_status=to_status,
            reason=reason,
            actor_subject=actor.subject,
            actor_side=actor.side,
            at=now,
        )
    )


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
    """Move the (locked) referral along, if the machine allows it from its status for
    the actor's side (raises domain.IllegalTransition / ReasonRequired)."""
    move = domain.transition(row["status"], action, actor.side, reason)
    values: dict[str, Any] = {
        "status": move.target,
        "version": row["version"] + 1,
        "updated_at": now,
    }
    if move.target == "acknowledged":
        values["acknowledged_at"] = now
    if move.target in domain.CLOSED:
        values["closed_at"] = now
        values["outcome"] = reason
    await session.execute(update(referrals).where(referrals.c.id == row["id"]).values(**values))
    await _history(session, row["id"], action, row["status"], move.target, reason, actor, now)
    await outbox.add(
        session,
        ReferralStatusChangedV1(
            referral_id=row["id"],
            case_id=row["case_id"],
            member_id=row["member_id"],
            subject_id=subject_of(row),
            partner_org=row["partner_org"],
            need=row["need"],
            action=action,
            from_status=row["status"],
            to_status=move.target,
            actor_side=actor.side,
            changed_at=now,
            reason=reason,
        ),
    )
    return {**row, **values}


def _overdue(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(referrals.c.status == "referred", referrals.c.acknowledge_by < now),
        and_(referrals.c.status.in_(sorted(domain.OPEN)), referrals.c.complete_by < now),
    )


def _escalated() -> ColumnElement[bool]:
    return or_(
        referrals.c.acknowledge_escalated_at.is_not(None),
        referrals.c.complete_escalated_at.is_not(None),
    )


@dataclass(frozen=True)
class ReferralFilters:
    status: Sequence[str] = ()
    case_id: UUID | None = None
    need: str | None = None
    overdue: bool | None = None
    escalated: bool | None = None


async def search(
    session: AsyncSession,
    where: ColumnElement[bool],
    filters: ReferralFilters,
    *,
    now: datetime,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """The referrals a decision reaches, filtered; the soonest deadline first."""
    conditions: list[ColumnElement[bool]] = [where]
    if filters.status:
        conditions.append(referrals.c.status.in_(list(filters.status)))
    if filters.case_id is not None:
        conditions.append(referrals.c.case_id == filters.case_id)
    if filters.need:
        conditions.append(referrals.c.need == filters.need)
    if filters.overdue is True:
        conditions.append(_overdue(now))
    elif filters.overdue is False:
        conditions.append(~_overdue(now))
    if filters.escalated is True:
        conditions.append(_escalated())
    elif filters.escalated is False:
        conditions.append(~_escalated())
    condition = and_(*conditions)
    total = (
        await session.execute(select(func.count()).select_from(referrals).where(condition))
    ).scalar_one()
    rows = await session.execute(
        select(referrals)
        .where(condition)
        .order_by(referrals.c.acknowledge_by, referrals.c.referred_at, referrals.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [dict(r) for r in rows.mappings()], int(total)


async def partner_names(session: AsyncSession, ids: set[UUID]) -> dict[UUID, str]:
    if not ids:
        return {}
    found = await session.execute(
        select(partners.c.id, partners.c.name).where(partners.c.id.in_(sorted(ids)))
    )
    return {row.id: row.name for row in found}


async def of_case(session: AsyncSession, case_id: UUID) -> list[dict[str, Any]]:
    """The case's referrals with their partner's name, oldest first (the case's view)."""
    found = await session.execute(
        select(
            referrals.c.id,
            referrals.c.need,
            referrals.c.partner_id,
            partners.c.name.label("partner_name"),
            referrals.c.status,
            referrals.c.referred_at,
            referrals.c.acknowledged_at,
            referrals.c.closed_at,
        )
        .join(partners, partners.c.id == referrals.c.partner_id)
        .where(referrals.c.case_id == case_id)
        .order_by(referrals.c.referred_at, referrals.c.id)
    )
    return [dict(r) for r in found.mappings()]


# --- the worker's periodic job --------------------------------------------------------


async def escalate_overdue(
    session: AsyncSession, outbox: OutboxWriter, *, now: datetime, batch: int = 500
) -> list[tuple[UUID, domain.Stage]]:
    """Flag and escalate to the ministry (once per stage) referrals past a deadline with
    the partner still to act: not acknowledged in time, or no outcome in time. Rows are
    locked (others' locked ones skipped), so parallel jobs never flag one twice."""
    late_ack = and_(
        referrals.c.status == "referred",
        referrals.c.acknowledge_by < now,
        referrals.c.acknowledge_escalated_at.is_(None),
    )
    late_outcome = and_(
        referrals.c.status.in_(sorted(domain.OPEN)),
        referrals.c.complete_by < now,
        referrals.c.complete_escalated_at.is_(None),
    )
    rows = (
        (
            await session.execute(
                select(referrals)
                .where(or_(late_ack, late_outcome))
                .order_by(referrals.c.acknowledge_by)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        )
        .mappings()
        .all()
    )
    flagged: list[tuple[UUID, domain.Stage]] = []
    for row in rows:
        stages: list[tuple[domain.Stage, datetime, str]] = []
        if (
            row["status"] == "referred"
            and row["acknowledge_by"] < now
            and row["acknowledge_escalated_at"] is None
        ):
            stages.append(("acknowledge", row["acknowledge_by"], "acknowledge_escalated_at"))
        if row["complete_by"] < now and row["complete_escalated_at"] is None:
            stages.append(("complete", row["complete_by"], "complete_escalated_at"))
        values: dict[str, Any] = {column: now for _, _, column in stages}
        await session.execute(
            update(referrals)
            .where(referrals.c.id == row["id"])
            .values(version=row["version"] + 1, updated_at=now, **values)
        )
        for stage, due, _column in stages:
            await _history(
                session,
                row["id"],
                "escalate",
                row["status"],
                row["status"],
                f"{stage} overdue since {due.isoformat()}",
                Actor(SYSTEM_SUBJECT, "system"),
                now,
            )
            await outbox.add(
                session,
                ReferralEscalatedV1(
                    referral_id=row["id"],
                    case_id=row["case_id"],
                    member_id=row["member_id"],
                    partner_id=row["partner_id"],
                    partner_org=row["partner_org"],
                    need=row["need"],
                    status=row["status"],
                    stage=stage,
                    due_at=due,
                    escalated_at=now,
                ),
            )
            flagged.append((row["id"], stage))
    return flagged


# --- erasure and merge (steps of the members read model's consumer) -------------------


async def erase_returnee(session: AsyncSession, member_id: UUID) -> None:
    """A returnee erased in the registry: their referrals stay as anonymous counts for the
    observatory (need, partner, prefecture, dates, status) but lose the link to them and
    every free text (the note, the partner's report or reason, in the history too)."""
    ids = select(referrals.c.id).where(referrals.c.member_id == member_id).scalar_subquery()
    await session.execute(
        update(referral_history).where(referral_history.c.referral_id.in_(ids)).values(reason=None)
    )
    await session.execute(
        update(referrals)
        .where(referrals.c.member_id == member_id)
        .values(member_id=None, note=None, outcome=None, language=None)
    )


async def merge_returnee(session: AsyncSession, absorbed_id: UUID, survivor_id: UUID) -> None:
    """Two registry records of one person merged: the survivor follows the referrals."""
    await session.execute(
        update(referrals).where(referrals.c.member_id == absorbed_id).values(member_id=survivor_id)
    )
