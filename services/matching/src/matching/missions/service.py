"""Missions: what follows an accepted proposal, until the ministry can count it.

States (each step checked here, a wrong one is a 409 at the edge):

    awaiting_agreement --agree--> agreed --travel--> travel_booked
    agreed | travel_booked --report--> (same state, report kept)
    agreed | travel_booked --complete--> completed     (needs the report; on-site
                                                        missions need travel dates)
    any state but completed --cancel--> cancelled

A mission is opened in the transaction that records the expert's acceptance, with
the facts statistics count copied in: the need's type and place in Togo, the
expert's country of residence (from the experts read model). Erasure keeps those
facts and drops everything that says who the expert was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import uuid_utils.compat as uuid_compat
from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.contracts import (
    MissionAgreedV1,
    MissionCancelledV1,
    MissionCompletedV1,
    MissionFacts,
)
from diaspora_events.outbox import OutboxWriter
from diaspora_identity.audit import AccessContext, AuditTrail
from diaspora_identity.policy import Decision
from diaspora_service.suppression import DEFAULT_THRESHOLD, hidden_cells
from matching import rows
from matching.experts.tables import experts
from matching.missions.tables import missions

MISSION_FIELDS: tuple[str, ...] = (
    "id",
    "proposal_id",
    "need_id",
    "member_id",
    "given_name",
    "family_name",
    "type",
    "region",
    "prefecture",
    "work_mode",
    "country_of_residence",
    "status",
    "starts_on",
    "ends_on",
    "terms",
    "agreed_at",
    "travel_out_on",
    "travel_back_on",
    "report",
    "reported_at",
    "completed_at",
    "cancelled_at",
    "cancel_reason",
    "created_at",
    "updated_at",
    "revision",
)
SCOPE_COLUMNS = {"member_id": missions.c.member_id}
OPEN_STATES = frozenset({"awaiting_agreement", "agreed", "travel_booked"})
MAX_MISSION_DAYS = 366


class MissionNotFound(Exception):
    """No such mission within the caller's scope."""


class WrongState(Exception):
    """The step does not apply to the mission's current state."""

    def __init__(self, status: str, step: str, why: str | None = None) -> None:
        super().__init__(why or f"a mission that is {status} cannot be {step}")
        self.status = status


class InvalidDates(ValueError):
    """Dates that contradict each other."""


class RevisionMismatch(Exception):
    def __init__(self, current: int) -> None:
        super().__init__(str(current))
        self.current = current


@dataclass(frozen=True)
class MissionQuery:
    mission_id: UUID | None = None
    status: str | None = None
    need_id: UUID | None = None
    type: str | None = None
    region: str | None = None
    offset: int = 0
    limit: int = 50


def facts(row: Mapping[str, Any]) -> MissionFacts:
    return MissionFacts(
        type=row["type"],
        region=row["region"] or "",
        prefecture=row["prefecture"],
        country_of_residence=row["country_of_residence"],
    )


async def open_mission(
    session: AsyncSession,
    *,
    proposal_id: UUID,
    need: Mapping[str, Any],
    member_id: UUID,
    now: datetime,
) -> UUID:
    """Open the mission of an accepted proposal (in the acceptance's transaction)."""
    country = (
        await session.execute(
            select(experts.c.country_of_residence).where(experts.c.member_id == member_id)
        )
    ).scalar()
    mission_id = uuid_compat.uuid7()
    await session.execute(
        missions.insert().values(
            id=mission_id,
            proposal_id=proposal_id,
            need_id=need["id"],
            member_id=member_id,
            type=need["type"],
            region=need["region"],
            prefecture=need["prefecture"],
            work_mode=need["work_mode"],
            country_of_residence=country,
            status="awaiting_agreement",
            starts_on=need["starts_on"],
            ends_on=need["ends_on"],
            created_at=now,
            updated_at=now,
        )
    )
    return mission_id


def _select() -> Select[Any]:
    return select(missions, experts.c.given_name, experts.c.family_name).select_from(
        missions.outerjoin(experts, experts.c.member_id == missions.c.member_id)
    )


async def find_missions(
    *,
    sessions: async_sessionmaker[AsyncSession],
    audit: AuditTrail,
    decision: Decision,
    context: AccessContext,
    query: MissionQuery,
) -> list[dict[str, Any]]:
    """Missions within the caller's scope, newest first; staff reads audited."""
    statement = _select().where(decision.where(SCOPE_COLUMNS))
    if query.mission_id is not None:
        statement = statement.where(missions.c.id == query.mission_id)
    for name in ("status", "need_id", "type", "region"):
        value = getattr(query, name)
        if value is not None:
            statement = statement.where(missions.c[name] == value)
    statement = (
        statement.order_by(missions.c.created_at.desc(), missions.c.id.desc())
        .offset(query.offset)
        .limit(query.limit)
    )
    async with sessions() as session, session.begin():
        found = await rows.every(session, statement)
        views = [decision.project(row, MISSION_FIELDS) for row in found]
        await audit.record_personal_reads(session, decision, context, found, views)
    return views


async def _locked(session: AsyncSession, decision: Decision, mission_id: UUID) -> dict[str, Any]:
    row = await rows.first(
        session,
        select(missions)
        .where(missions.c.id == mission_id, decision.where(SCOPE_COLUMNS))
        .with_for_update(),
    )
    if row is None:
        raise MissionNotFound()
    return row


async def _change(
    session: AsyncSession,
    decision: Decision,
    mission_id: UUID,
    values: Mapping[str, Any],
    now: datetime,
) -> dict[str, Any]:
    await session.execute(
        update(missions)
        .where(missions.c.id == mission_id)
        .values(**values, updated_at=now, revision=missions.c.revision + 1)
    )
    found = await rows.one(session, _select().where(missions.c.id == mission_id))
    return decision.project(found, MISSION_FIELDS)


def _check_revision(row: Mapping[str, Any], if_match: int | None) -> None:
    if if_match is not None and if_match != row["revision"]:
        raise RevisionMismatch(row["revision"])


async def agree(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    decision: Decision,
    mission_id: UUID,
    starts_on: date,
    ends_on: date,
    terms: str,
    if_match: int | None = None,
) -> dict[str, Any]:
    """Record the agreement: the mission's dates and terms (matching.mission.agreed)."""
    if ends_on < starts_on:
        raise InvalidDates("the mission ends before it starts")
    if (ends_on - starts_on).days > MAX_MISSION_DAYS:
        raise InvalidDates(f"a mission lasts at most {MAX_MISSION_DAYS} days")
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        row = await _locked(session, decision, mission_id)
        _check_revision(row, if_match)
        if row["status"] != "awaiting_agreement":
            raise WrongState(row["status"], "agreed")
        view = await _change(
            session,
            decision,
            mission_id,
            {
                "status": "agreed",
                "starts_on": starts_on,
                "ends_on": ends_on,
                "terms": terms,
                "agreed_at": now,
                "agreed_by": decision.principal.subject,
            },
            now,
        )
        await outbox.add(
            session,
            MissionAgreedV1(
                mission_id=mission_id,
                proposal_id=row["proposal_id"],
                need_id=row["need_id"],
                member_id=row["member_id"],
                agreed_at=now,
                starts_on=starts_on,
                ends_on=ends_on,
                facts=facts(row),
            ),
        )
    return view


async def book_travel(
    *,
    sessions: async_sessionmaker[AsyncSession],
    decision: Decision,
    mission_id: UUID,
    travel_out_on: date,
    travel_back_on: date,
    if_match: int | None = None,
) -> dict[str, Any]:
    """Record (or correct) the travel dates of an agreed mission."""
    if travel_back_on < travel_out_on:
        raise InvalidDates("the return is before the departure")
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        row = await _locked(session, decision, mission_id)
        _check_revision(row, if_match)
        if row["status"] not in ("agreed", "travel_booked"):
            raise WrongState(row["status"], "given travel dates")
        if travel_out_on > row["ends_on"] or travel_back_on < row["starts_on"]:
            raise InvalidDates(
                f"the stay must overlap the mission ({row['starts_on']} to {row['ends_on']})"
            )
        return await _change(
            session,
            decision,
            mission_id,
            {
                "status": "travel_booked",
                "travel_out_on": travel_out_on,
                "travel_back_on": travel_back_on,
            },
            now,
        )


async def write_report(
    *,
    sessions: async_sessionmaker[AsyncSession],
    decision: Decision,
    mission_id: UUID,
    report: str,
    if_match: int | None = None,
) -> dict[str, Any]:
    """The short report on the mission (the expert's or the ministry's words)."""
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        row = await _locked(session, decision, mission_id)
        _check_revision(row, if_match)
        if row["status"] not in ("agreed", "travel_booked"):
            raise WrongState(row["status"], "reported on")
        return await _change(
            session, decision, mission_id, {"report": report, "reported_at": now}, now
        )


async def complete(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    decision: Decision,
    mission_id: UUID,
    if_match: int | None = None,
) -> dict[str, Any]:
    """Close a mission carried out (matching.mission.completed): counted from now on."""
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        row = await _locked(session, decision, mission_id)
        _check_revision(row, if_match)
        if row["status"] not in ("agreed", "travel_booked"):
            raise WrongState(row["status"], "completed")
        if not row["report"]:
            raise WrongState(row["status"], "completed", "write the mission's report first")
        if row["work_mode"] == "on_site" and row["status"] != "travel_booked":
            raise WrongState(
                row["status"], "completed", "an on-site mission needs its travel dates first"
            )
        view = await _change(
            session,
            decision,
            mission_id,
            {
                "status": "completed",
                "completed_at": now,
                "completed_by": decision.principal.subject,
            },
            now,
        )
        await outbox.add(
            session,
            MissionCompletedV1(
                mission_id=mission_id,
                need_id=row["need_id"],
                member_id=row["member_id"],
                completed_at=now,
                starts_on=row["starts_on"],
                ends_on=row["ends_on"],
                facts=facts(row),
            ),
        )
    return view


async def cancel(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    decision: Decision,
    mission_id: UUID,
    reason: str | None,
) -> dict[str, Any]:
    """Cancel a mission that will not take place (matching.mission.cancelled)."""
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        row = await _locked(session, decision, mission_id)
        if row["status"] not in OPEN_STATES:
            raise WrongState(row["status"], "cancelled")
        view = await _change(
            session,
            decision,
            mission_id,
            {"status": "cancelled", "cancelled_at": now, "cancel_reason": reason},
            now,
        )
        await outbox.add(
            session,
            MissionCancelledV1(
                mission_id=mission_id,
                need_id=row["need_id"],
                member_id=row["member_id"],
                cancelled_at=now,
                reason=reason,
            ),
        )
    return view


# -- statistics --------------------------------------------------------------------

DIMENSION_COLUMNS = {
    "type": missions.c.type,
    "region": missions.c.region,
    "country": missions.c.country_of_residence,
}


@dataclass(frozen=True)
class MissionCounts:
    by: tuple[str, ...]
    status: str
    exact: bool
    threshold: int
    total: int | None
    cells: list[dict[str, Any]]


async def mission_statistics(
    *,
    sessions: async_sessionmaker[AsyncSession],
    decision: Decision,
    by: Sequence[str],
    status: str = "completed",
    year: int | None = None,
    threshold: int = DEFAULT_THRESHOLD,
) -> MissionCounts:
    """Missions counted by type, region of Togo and/or the expert's country of
    residence. Small cells are suppressed (diaspora_service.suppression) unless the
    decision is for ``statistics_exact`` (coordinators, admins, on request)."""
    dims = tuple(dict.fromkeys(by)) or ("type",)
    columns = [DIMENSION_COLUMNS[d].label(d) for d in dims]
    statement = select(*columns, func.count().label("n")).where(decision.where(SCOPE_COLUMNS))
    if status != "all":
        statement = statement.where(missions.c.status == status)
    if year is not None:
        moment = missions.c.completed_at if status == "completed" else missions.c.created_at
        statement = statement.where(func.extract("year", moment) == year)
    statement = statement.group_by(*columns).order_by(*columns)
    async with sessions() as session:
        found = (await session.execute(statement)).all()
    exact = decision.action == "statistics_exact"
    keyed = {"|".join(str(getattr(r, d) or "") for d in dims): r for r in found}
    counts = {key: int(r.n) for key, r in keyed.items()}
    total = sum(counts.values())
    hidden = (
        set() if exact else hidden_cells(counts, threshold=threshold, total=total, additive=True)
    )
    shown_total = total if exact or total >= threshold else None
    cells = [
        {
            **{d: getattr(r, d) for d in dims},
            "missions": None if key in hidden else counts[key],
        }
        for key, r in keyed.items()
    ]
    return MissionCounts(
        by=dims, status=status, exact=exact, threshold=threshold, total=shown_total, cells=cells
    )


# -- erasure -----------------------------------------------------------------------


async def erase_member(session: AsyncSession, outbox: OutboxWriter, member_id: UUID) -> int:
    """Erasure: the person leaves every mission; its counted facts stay.

    Kept: type, region, prefecture, country of residence, dates, status (the ministry's
    counts hold). Dropped: the member id, the terms, the travel dates and the report
    (their words, their movements). An open mission is cancelled: nobody is left to
    carry it out.
    """
    now = datetime.now(UTC)
    still_open = list(
        (
            await session.execute(
                select(missions.c.id, missions.c.need_id).where(
                    missions.c.member_id == member_id, missions.c.status.in_(OPEN_STATES)
                )
            )
        ).all()
    )
    result = await session.execute(
        update(missions)
        .where(missions.c.member_id == member_id)
        .values(
            member_id=None,
            terms=None,
            travel_out_on=None,
            travel_back_on=None,
            report=None,
            cancel_reason=None,
            erased_at=now,
            updated_at=now,
        )
    )
    if still_open:
        await session.execute(
            update(missions)
            .where(missions.c.id.in_([m.id for m in still_open]))
            .values(status="cancelled", cancelled_at=now)
        )
        await outbox.add_many(
            session,
            [
                MissionCancelledV1(
                    mission_id=m.id, need_id=m.need_id, member_id=None, cancelled_at=now
                )
                for m in still_open
            ],
        )
    return int(getattr(result, "rowcount", 0) or 0)


async def merge_member(session: AsyncSession, merged_id: UUID, survivor_id: UUID) -> None:
    """Merge: the merged record's missions become the survivor's."""
    await session.execute(
        update(missions).where(missions.c.member_id == merged_id).values(member_id=survivor_id)
    )
