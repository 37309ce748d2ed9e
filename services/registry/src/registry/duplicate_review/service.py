"""The officers' review queue of likely duplicates: list, read, merge, dismiss.

A case shows both records side by side, with the fields the caller's
``duplicate_case`` grant allows; every record shown is an audited read. A case is
within reach only when the caller's scope covers *both* records, as they stand now:
an embassy officer sees the cases whose two records live in one of their embassies'
jurisdiction (the ``embassy`` queue); a case whose records live under two different
embassies is in the ``ministry`` queue, for coordinators and admins (scope ``all``)
only, so that nobody merges a record they could never read. Merging
keeps the survivor chosen by the officer and folds the other record into it:

- the survivor's values win; its blanks are filled from the other record
  (names, dates, contacts and the city are the survivor's; an empty city,
  address, arrival year, residence status, sex or place of birth is taken over);
- lists are unioned (languages, occupations, skills, education, experience,
  the mission types of the availability), each item once;
- documents: the survivor's per kind, the other's kinds it lacks are moved over
  (re-encrypted for the survivor); consents: the latest decision per purpose of
  either record; a citizen account linked to the absorbed record moves to the
  survivor (refused when both records belong to different accounts);
- the absorbed record is deleted with its personal data (history, documents,
  consents, match keys); what other parts of the registry keep on it is removed
  by the erasure steps the bootstrap built, after the merge steps (association
  links and officer entries) moved to the survivor what names the absorbed record.

One transaction publishes ``registry.member.merged`` (absorbed id),
``registry.member.updated`` (the survivor's whole profile) and
``registry.duplicates.resolved``. Other open cases of the absorbed record now
concern the survivor; one that would compare the survivor with itself is closed
as merged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import ColumnElement, Select, and_, case, delete, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.contracts import (
    DuplicatesResolvedV1,
    MemberMergedV1,
    MemberUpdatedV1,
)
from diaspora_events.contracts.base import Event
from diaspora_events.outbox import OutboxWriter
from diaspora_identity.audit import AccessContext, AuditTrail
from diaspora_identity.policy import Decision, Scope
from registry.crypto import DocumentCipher
from registry.duplicates.detection import forget_member
from registry.duplicates.tables import duplicate_cases
from registry.members.records import (
    MEMBER_FIELDS,
    PROFILE_FIELDS,
    consents_of,
    documents_of,
    jsonable,
    open_number,
    profile_of,
    record_change,
    view_of,
)
from registry.members.tables import member_consents, member_documents, members
from registry.resources import ErasureStep, MergeStep

Status = Literal["open", "merged", "dismissed"]

# The two records of a case, as they stand now (a record may have moved since the case
# was flagged): the case's scope is theirs, never a copy kept on the case.
_member = members.alias("case_member")
_match = members.alias("case_match")
# Outer joins: a closed case may have lost a record (merged into the other, erased).
_WITH_RECORDS = duplicate_cases.outerjoin(
    _member, _member.c.id == duplicate_cases.c.member_id
).outerjoin(_match, _match.c.id == duplicate_cases.c.match_id)
_BOTH_PRESENT = and_(_member.c.id.is_not(None), _match.c.id.is_not(None))
Queue = Literal["embassy", "ministry"]
# Records under one embassy: that embassy's queue; under two: the ministry's.
case_queue = case(
    (and_(_BOTH_PRESENT, _member.c.embassy_id != _match.c.embassy_id), literal("ministry")),
    else_=literal("embassy"),
).label("queue")
# The embassy whose officers review it: the one covering the newer record, now.
case_embassy = func.coalesce(
    _member.c.embassy_id, _match.c.embassy_id, duplicate_cases.c.embassy_id
).label("embassy_id")
_CASE_COLUMNS = [c for c in duplicate_cases.c if c.name != "embassy_id"]


def in_reach(decision: Decision) -> ColumnElement[bool]:
    """Cases whose records the caller's scope all covers; cases across two embassies
    only for a grant of scope ``all`` (the ministry queue)."""

    def covered(record: Any) -> ColumnElement[bool]:
        return or_(record.c.id.is_(None), decision.where({"embassy_id": record.c.embassy_id}))

    reach = and_(
        covered(_member),
        covered(_match),
        or_(_member.c.id.is_not(None), _match.c.id.is_not(None)),
    )
    if any(g.grant.scope is Scope.ALL for g in decision.grants):
        return reach
    return and_(reach, case_queue == "embassy")


CASE_FIELDS = (
    "id",
    "embassy_id",
    "queue",
    "score",
    "reasons",
    "source",
    "import_job_id",
    "status",
    "flagged_at",
    "resolved_at",
    "resolved_by",
    "survivor_id",
    "member",
    "match",
)
# Fields of each record shown in a case (document numbers never).
RECORD_FIELDS = tuple(f for f in MEMBER_FIELDS if f not in ("version",))


class CaseNotFound(Exception):
    pass


class CaseClosed(Exception):
    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class NotInCase(ValueError):
    """The survivor named is not one of the case's two records."""


class AccountsConflict(Exception):
    """Both records are linked to different citizen accounts."""


@dataclass(frozen=True)
class CaseQuery:
    status: Status | None = "open"
    embassy: str | None = None
    queue: Queue | None = None
    offset: int = 0
    limit: int = 50


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


async def _records(session: AsyncSession, ids: Sequence[UUID]) -> dict[UUID, dict[str, Any]]:
    rows = (await session.execute(select(members).where(members.c.id.in_(ids)))).mappings().all()
    documents = await documents_of(session, ids)
    consents = await consents_of(session, ids)
    records = {}
    for row in rows:
        view = view_of(row, documents[row["id"]], consents[row["id"]])
        records[row["id"]] = {f: view[f] for f in RECORD_FIELDS}
    return records


def _filtered(query: Select[Any], q: CaseQuery) -> Select[Any]:
    if q.status is not None:
        query = query.where(duplicate_cases.c.status == q.status)
    if q.embassy is not None:
        query = query.where(case_embassy == q.embassy)
    if q.queue is not None:
        query = query.where(case_queue == q.queue)
    return query


async def find_cases(
    *,
    sessions: async_sessionmaker[AsyncSession],
    audit: AuditTrail,
    decision: Decision,
    context: AccessContext,
    query: CaseQuery,
    case_id: UUID | None = None,
) -> list[dict[str, Any]]:
    """Cases within the caller's scope (oldest first), each with both records; audited."""
    statement = _filtered(
        select(*_CASE_COLUMNS, case_embassy, case_queue)
        .select_from(_WITH_RECORDS)
        .where(in_reach(decision)),
        query,
    ).order_by(duplicate_cases.c.flagged_at, duplicate_cases.c.id)
    if case_id is not None:
        statement = statement.where(duplicate_cases.c.id == case_id)
    statement = statement.offset(query.offset).limit(query.limit)
    async with sessions() as session, session.begin():
        cases = (await session.execute(statement)).mappings().all()
        ids = sorted({i for c in cases for i in (c["member_id"], c["match_id"])})
        records = await _records(session, ids)
        views: list[dict[str, Any]] = []
        accesses: list[tuple[UUID, list[str]]] = []
        for case in cases:
            full = {
                **case,
                "member": records.get(case["member_id"]),
                "match": records.get(case["match_id"]),
            }
            view = decision.project(full, CASE_FIELDS)
            views.append(view)
            for side in ("member", "match"):
                record = view.get(side)
                if record is not None:
                    accesses.append((record["id"], list(record)))
        await audit.record(session, decision, context, accesses)
    return views


async def _locked_case(session: AsyncSession, decision: Decision, case_id: UUID) -> Any:
    case = (
        await session.execute(
            select(*_CASE_COLUMNS, case_embassy)
            .select_from(_WITH_RECORDS)
            .where(duplicate_cases.c.id == case_id, in_reach(decision))
            .with_for_update(of=duplicate_cases)
        )
    ).first()
    if case is None:
        raise CaseNotFound(str(case_id))
    if case.status != "open":
        raise CaseClosed(case.status)
    return case


def _resolved(
    case_id: UUID,
    outcome: Literal["merged", "dismissed"],
    survivor: UUID | None,
    by: str,
    at: datetime,
) -> DuplicatesResolvedV1:
    return DuplicatesResolvedV1(
        case_id=case_id, outcome=outcome, survivor_id=survivor, resolved_at=at, resolved_by=by
    )


async def dismiss_case(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    decision: Decision,
    case_id: UUID,
) -> dict[str, Any]:
    """Not the same person: close the case; both records stay as they are."""
    now = datetime.now(UTC)
    by = decision.principal.subject
    async with sessions() as session, session.begin():
        await _locked_case(session, decision, case_id)
        await session.execute(
            update(duplicate_cases)
            .where(duplicate_cases.c.id == case_id)
            .values(status="dismissed", resolved_at=now, resolved_by=by)
        )
        await outbox.add(session, _resolved(case_id, "dismissed", None, by, now))
    return {"id": case_id, "status": "dismissed", "resolved_at": now, "resolved_by": by}


# -- merge ---------------------------------------------------------------------------------

# Column groups that are one value each: taken over whole when the survivor's is empty.
_SCALARS: tuple[tuple[str, ...], ...] = (
    ("city_name", "city_geonames_id", "city_latitude", "city_longitude"),
    ("birth_city", "birth_country"),
    ("postal_address",),
    ("arrival_year",),
    ("residence_status",),
    ("owner_subject",),
    ("registration_consent_method", "registration_consent_reference"),
)
_JSON_LISTS = ("occupations", "skills", "education", "experience")
_TEXT_ARRAYS = ("languages", "occupation_codes", "skill_uris", "mission_types")


def _union(first: Sequence[Any], second: Sequence[Any]) -> list[Any]:
    merged = list(first)
    seen = [jsonable(item) for item in merged]
    for item in second:
        if jsonable(item) not in seen:
            merged.append(item)
            seen.append(jsonable(item))
    return merged


def merged_columns(survivor: Mapping[Any, Any], absorbed: Mapping[Any, Any]) -> dict[str, Any]:
    """The survivor's member columns after absorbing the other record (the merge rule)."""
    values: dict[str, Any] = {}
    for group in _SCALARS:
        if all(_blank(survivor.get(c)) for c in group) and not all(
            _blank(absorbed.get(c)) for c in group
        ):
            values.update({c: absorbed.get(c) for c in group})
    if survivor.get("sex") in (None, "unspecified") and absorbed.get("sex") not in (
        None,
        "unspecified",
    ):
        values["sex"] = absorbed["sex"]
    for name in _JSON_LISTS:
        union = _union(survivor.get(name) or [], absorbed.get(name) or [])
        if union != list(survivor.get(name) or []):
            values[name] = union
    for name in _TEXT_ARRAYS:
        union = _union(survivor.get(name) or [], absorbed.get(name) or [])
        if union != list(survivor.get(name) or []):
            values[name] = sorted(union) if name != "languages" else union
    mine: dict[str, Any] = dict(survivor.get("availability") or {})
    theirs: dict[str, Any] = dict(absorbed.get("availability") or {})
    availability = dict(mine)
    for key, value in theirs.items():
        if key == "mission_types":
            availability[key] = _union(mine.get(key) or [], value or [])
        elif _blank(mine.get(key)) or (key == "remote" and value and not mine.get(key)):
            availability[key] = value
    if availability != mine:
        values["availability"] = availability
    confirmed = [
        t for t in (survivor.get("last_confirmed_at"), absorbed.get("last_confirmed_at")) if t
    ]
    if confirmed and max(confirmed) != survivor.get("last_confirmed_at"):
        values["last_confirmed_at"] = max(confirmed)
    return values


async def merge_case(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    audit: AuditTrail,
    cipher: DocumentCipher,
    decision: Decision,
    context: AccessContext,
    case_id: UUID,
    survivor_id: UUID,
    merge_steps: Sequence[MergeStep],
    erasure_steps: Sequence[ErasureStep],
) -> dict[str, Any]:
    """Fold the case's other record into ``survivor_id`` (see the module's rule); the
    other features' ``merge_steps`` then ``erasure_steps`` run in its transaction."""
    now = datetime.now(UTC)
    by = decision.principal.subject
    async with sessions() as session, session.begin():
        case = await _locked_case(session, decision, case_id)
        pair = {case.member_id, case.match_id}
        if survivor_id not in pair:
            raise NotInCase(str(survivor_id))
        (absorbed_id,) = pair - {survivor_id}
        locked = (
            (
                await session.execute(
                    select(members)
                    .where(members.c.id.in_(sorted(pair)))
                    .order_by(members.c.id)
                    .with_for_update()
                )
            )
            .mappings()
            .all()
        )
        rows = {r["id"]: r for r in locked}
        if len(rows) != 2:
            raise CaseNotFound(str(case_id))  # one record is gone (erased meanwhile)
        survivor, absorbed = rows[survivor_id], rows[absorbed_id]
        if (
            survivor["owner_subject"]
            and absorbed["owner_subject"]
            and survivor["owner_subject"] != absorbed["owner_subject"]
        ):
            raise AccountsConflict()

        documents = await documents_of(session, [survivor_id, absorbed_id])
        consents = await consents_of(session, [survivor_id, absorbed_id])
        before = view_of(survivor, documents[survivor_id], consents[survivor_id])

        values = merged_columns(survivor, absorbed)
        # The account link is unique: free it on the absorbed row before the survivor takes it.
        if "owner_subject" in values:
            await session.execute(
                update(members).where(members.c.id == absorbed_id).values(owner_subject=None)
            )
        result = await session.execute(
            update(members)
            .where(members.c.id == survivor_id)
            .values(**values, updated_at=now, version=members.c.version + 1)
            .returning(*members.c)
        )
        after_row = result.one()._mapping
        await _move_documents(session, cipher, documents, survivor_id, absorbed_id)
        await _move_consents(session, consents, survivor_id, absorbed_id)
        for step in merge_steps:
            await step(session, absorbed_id, survivor_id)
        # A step may change the survivor's row (identity/: its verification level): the
        # history line and the event are built from the row as it stands after them.
        after_row = (
            (await session.execute(select(members).where(members.c.id == survivor_id)))
            .one()
            ._mapping
        )
        documents_after = (await documents_of(session, [survivor_id]))[survivor_id]
        consents_after = (await consents_of(session, [survivor_id]))[survivor_id]
        after = view_of(after_row, documents_after, consents_after)
        changed = [
            f
            for f in MEMBER_FIELDS
            if f not in ("updated_at", "version") and jsonable(before[f]) != jsonable(after[f])
        ]
        await record_change(
            session,
            member_id=survivor_id,
            action="merged",
            actor_role=decision.reaching({"embassy_id": survivor["embassy_id"]})[0].role.value,
            actor_subject=by,
            fields=changed,
            old=before,
            new=after,
            version=after_row["version"],
            request_id=context.request_id,
            at=now,
        )
        await _repoint_cases(session, outbox, case_id, absorbed_id, survivor_id, by, now)
        await session.execute(
            update(duplicate_cases)
            .where(duplicate_cases.c.id == case_id)
            .values(status="merged", resolved_at=now, resolved_by=by, survivor_id=survivor_id)
        )
        for erase in erasure_steps:
            if erase is not forget_member:
                await erase(session, absorbed_id)
        await session.execute(delete(members).where(members.c.id == absorbed_id))
        await outbox.add_many(
            session,
            [
                MemberMergedV1(
                    member_id=absorbed_id, survivor_id=survivor_id, merged_at=now, case_id=case_id
                ),
                MemberUpdatedV1(
                    member_id=survivor_id,
                    updated_at=now,
                    changed_fields=sorted(set(changed) & PROFILE_FIELDS) or ["merged"],
                    profile=profile_of(after_row, consents_after),
                ),
                _resolved(case_id, "merged", survivor_id, by, now),
            ],
        )
        await audit.record(
            session,
            decision,
            context,
            [(survivor_id, changed or ["id"]), (absorbed_id, list(RECORD_FIELDS))],
        )
    return {
        "id": case_id,
        "status": "merged",
        "survivor_id": survivor_id,
        "absorbed_id": absorbed_id,
        "changed_fields": changed,
        "resolved_at": now,
        "resolved_by": by,
    }


async def _move_documents(
    session: AsyncSession,
    cipher: DocumentCipher,
    documents: Mapping[UUID, Sequence[Mapping[str, Any]]],
    survivor_id: UUID,
    absorbed_id: UUID,
) -> None:
    """The absorbed record's documents of kinds the survivor lacks, re-sealed for it (the
    member id is bound to each ciphertext)."""
    kinds = {d["kind"] for d in documents[survivor_id]}
    rows = []
    for document in documents[absorbed_id]:
        if document["kind"] in kinds:
            continue
        number = open_number(cipher, document)
        if number is None:
            continue  # undecryptable (key gone): nothing to move
        sealed = cipher.seal(number, member_id=survivor_id, kind=document["kind"])
        rows.append(
            {
                "member_id": survivor_id,
                "kind": document["kind"],
                "issuing_country": document["issuing_country"],
                "expires_on": document["expires_on"],
                "key_id": sealed.key_id,
                "number_ciphertext": sealed.ciphertext,
            }
        )
    if rows:
        await session.execute(member_documents.insert(), rows)


async def _move_consents(
    session: AsyncSession,
    consents: Mapping[UUID, Sequence[Mapping[str, Any]]],
    survivor_id: UUID,
    absorbed_id: UUID,
) -> None:
    """Per purpose, the later decision of the two records becomes the survivor's latest."""
    mine = {c["purpose"]: c for c in consents[survivor_id]}
    rows = []
    for theirs in consents[absorbed_id]:
        current = mine.get(theirs["purpose"])
        if current is None or theirs["at"] > current["at"]:
            rows.append(
                {
                    "member_id": survivor_id,
                    "purpose": theirs["purpose"],
                    "granted": theirs["granted"],
                    "at": theirs["at"],
                    "method": theirs["method"],
                    "actor_role": theirs["actor_role"],
                    "actor_subject": theirs["actor_subject"],
                }
            )
    if rows:
        await session.execute(member_consents.insert(), rows)


async def _repoint_cases(
    session: AsyncSession,
    outbox: OutboxWriter,
    case_id: UUID,
    absorbed_id: UUID,
    survivor_id: UUID,
    by: str,
    now: datetime,
) -> None:
    """Open cases of the absorbed record now concern the survivor."""
    c = duplicate_cases.c
    others = (
        await session.execute(
            select(c.id, c.member_id, c.match_id).where(
                c.status == "open",
                c.id != case_id,
                or_(c.member_id == absorbed_id, c.match_id == absorbed_id),
            )
        )
    ).all()
    events: list[Event] = []
    for other in others:
        member = survivor_id if other.member_id == absorbed_id else other.member_id
        match = survivor_id if other.match_id == absorbed_id else other.match_id
        if member == match:
            await session.execute(
                update(duplicate_cases)
                .where(c.id == other.id)
                .values(status="merged", resolved_at=now, resolved_by=by, survivor_id=survivor_id)
            )
            events.append(_resolved(other.id, "merged", survivor_id, by, now))
        else:
            await session.execute(
                update(duplicate_cases)
                .where(c.id == other.id)
                .values(member_id=member, match_id=match)
            )
    if events:
        await outbox.add_many(session, events)


async def open_cases_count(sessions: async_sessionmaker[AsyncSession], decision: Decision) -> int:
    async with sessions() as session:
        found = await session.execute(
            select(func.count())
            .select_from(_WITH_RECORDS)
            .where(and_(duplicate_cases.c.status == "open", in_reach(decision)))
        )
    return int(found.scalar_one())
