"""Project holders' platform: members submit projects, national actors and partners
search them and express interest, the holder is told and sees who is interested.

Who sees what (policy resources ``project`` and ``project_interest``):
- a holder (citizen) sees and changes their own projects only (token ``member_id``);
- the ministry's coordinators see every project with the holder's contact (audited);
- partners' case workers and embassy officers see every open project *without* the
  holder's id and contact, unless the holder chose to share their contact
  (``share_contact``): that choice is the holder's consent, per project, and
  reads of a shared contact by staff are audited like any other;
- interest: a holder sees every interest in their projects (who, organisation,
  message, the actor's professional contact); a partner sees its organisation's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import uuid_utils.compat as uuid_compat
from sqlalchemy import Select, case, delete, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.contracts import (
    InterestExpressedV1,
    ProjectDetails,
    ProjectSubmittedV1,
    ProjectUpdatedV1,
    ProjectWithdrawnV1,
)
from diaspora_events.outbox import OutboxWriter
from diaspora_identity.audit import AccessContext, AuditTrail
from diaspora_identity.policy import Decision
from diaspora_identity.principal import Principal, Role
from matching import rows
from matching.projects.domain import EDITABLE_FIELDS, PUBLIC_FIELDS, place
from matching.projects.tables import project_interests, projects

# The CFA franc's fixed parity with the euro (since 1999): amounts in either currency
# compare exactly.
XOF_PER_EUR = Decimal("655.957")

PROJECT_FIELDS: tuple[str, ...] = (
    "id",
    "holder_id",
    "title",
    "sector",
    "region",
    "prefecture",
    "amount_sought",
    "currency",
    "stage",
    "partners_wanted",
    "description",
    "contact_name",
    "contact_email",
    "contact_phone",
    "share_contact",
    "status",
    "submitted_at",
    "updated_at",
    "revision",
)
CONTACT_FIELDS: tuple[str, ...] = ("contact_name", "contact_email", "contact_phone")
SCOPE_COLUMNS = {"holder_id": projects.c.holder_id}

INTEREST_FIELDS: tuple[str, ...] = (
    "id",
    "project_id",
    "organisation",
    "partner_org",
    "actor_role",
    "actor_subject",
    "actor_name",
    "actor_email",
    "message",
    "expressed_at",
)
INTEREST_SCOPE_COLUMNS = {
    "holder_id": projects.c.holder_id,
    "partner_org": project_interests.c.partner_org,
}


class NotAMember(Exception):
    """The caller's token carries no registry member id (not registered yet)."""


class ProjectNotFound(Exception):
    """No such project within the caller's scope."""


class ProjectClosed(Exception):
    """The project was withdrawn: it can no longer change or receive interest."""


class RevisionMismatch(Exception):
    """If-Match named another revision than the current one."""

    def __init__(self, current: int) -> None:
        super().__init__(str(current))
        self.current = current


class Unreachable(ValueError):
    """A change would leave the project without any contact (email or phone)."""


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before for a different request."""


@dataclass(frozen=True)
class SubmitProject:
    title: str
    sector: str
    region: str
    prefecture: str | None
    amount_sought: Decimal
    currency: str
    stage: str
    partners_wanted: list[str]
    description: str
    contact_name: str
    contact_email: str | None
    contact_phone: str | None
    share_contact: bool
    idempotency_key: str | None = None


@dataclass(frozen=True)
class ProjectQuery:
    project_id: UUID | None = None
    sector: str | None = None
    region: str | None = None
    prefecture: str | None = None
    stage: str | None = None
    amount_min_xof: Decimal | None = None
    amount_max_xof: Decimal | None = None
    text: str | None = None
    include_withdrawn: bool = False
    offset: int = 0
    limit: int = 50


def to_xof(amount: Decimal, currency: str) -> Decimal:
    return amount * XOF_PER_EUR if currency == "EUR" else amount


def _amount_xof() -> Any:
    return case(
        (projects.c.currency == "EUR", projects.c.amount_sought * literal(XOF_PER_EUR)),
        else_=projects.c.amount_sought,
    )


def details(row: Mapping[str, Any]) -> ProjectDetails:
    """What matching.project.* events carry of a project (never the contact)."""
    return ProjectDetails(**{f: row[f] for f in PUBLIC_FIELDS})


def _digest(command: SubmitProject) -> str:
    body = {k: v for k, v in command.__dict__.items() if k != "idempotency_key"}
    return hashlib.sha256(json.dumps(body, default=str, sort_keys=True).encode()).hexdigest()


def _holder(principal: Principal) -> UUID:
    if Role.CITIZEN not in principal.roles or principal.member_id is None:
        raise NotAMember()
    return principal.member_id


def view(decision: Decision, row: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of one project the caller may receive.

    The policy's field rule first; then the holder's consent: a shared contact is
    shown to everyone who may read the project.
    """
    shown = decision.project(row, PROJECT_FIELDS)
    if row["share_contact"]:
        for name in CONTACT_FIELDS:
            shown[name] = row[name]
    return shown


async def submit_project(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    decision: Decision,
    command: SubmitProject,
) -> tuple[dict[str, Any], bool]:
    """A member submits a project; returns its view and whether it was created now.

    A repeated request with the same Idempotency-Key returns the first project.
    """
    holder_id = _holder(decision.principal)
    digest = _digest(command)
    now = datetime.now(UTC)
    values = {f: getattr(command, f) for f in EDITABLE_FIELDS}
    async with sessions() as session, session.begin():
        if command.idempotency_key:
            existing = await rows.first(
                session,
                select(projects).where(
                    projects.c.holder_id == holder_id,
                    projects.c.idempotency_key == command.idempotency_key,
                ),
            )
            if existing is not None:
                if existing["request_digest"] != digest:
                    raise IdempotencyConflict(command.idempotency_key)
                return view(decision, existing), False
        project_id = uuid_compat.uuid7()
        row = await rows.first(
            session,
            insert(projects)
            .values(
                id=project_id,
                holder_id=holder_id,
                idempotency_key=command.idempotency_key,
                request_digest=digest,
                submitted_at=now,
                updated_at=now,
                **values,
            )
            .on_conflict_do_nothing(constraint="projects_idempotency_key")
            .returning(projects),
        )
        if row is None:
            # The same key raced with us and won: answer like a repeat.
            raise IdempotencyConflict(command.idempotency_key or "")
        await outbox.add(
            session,
            ProjectSubmittedV1(
                project_id=project_id, holder_id=holder_id, submitted_at=now, project=details(row)
            ),
            subject=str(project_id),
        )
    return view(decision, row), True


async def _locked_own(session: AsyncSession, decision: Decision, project_id: UUID) -> Any:
    row = await rows.first(
        session,
        select(projects)
        .where(projects.c.id == project_id, decision.where(SCOPE_COLUMNS))
        .with_for_update(),
    )
    if row is None:
        raise ProjectNotFound()
    return row


async def update_project(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    decision: Decision,
    project_id: UUID,
    changes: Mapping[str, Any],
    if_match: int | None = None,
) -> dict[str, Any]:
    """The holder changes their project; matching.project.updated says which public
    fields changed (a change of contact only is not published: it is not in events)."""
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        row = await _locked_own(session, decision, project_id)
        if row["status"] != "open":
            raise ProjectClosed()
        if if_match is not None and if_match != row["revision"]:
            raise RevisionMismatch(row["revision"])
        wanted = dict(changes)
        if "region" in wanted or "prefecture" in wanted:
            # A new region without a prefecture drops the old prefecture.
            keep = None if "region" in wanted else row["prefecture"]
            wanted["region"], wanted["prefecture"] = place(
                wanted.get("region") or row["region"], wanted.get("prefecture", keep)
            )
        merged = {**row, **wanted}
        if merged["contact_email"] is None and merged["contact_phone"] is None:
            raise Unreachable("keep a contact email or phone")
        changed = {k: v for k, v in wanted.items() if k in EDITABLE_FIELDS and row[k] != v}
        if not changed:
            return view(decision, row)
        updated = await rows.one(
            session,
            update(projects)
            .where(projects.c.id == project_id)
            .values(**changed, updated_at=now, revision=projects.c.revision + 1)
            .returning(projects),
        )
        public = sorted(f for f in changed if f in PUBLIC_FIELDS)
        if public:
            await outbox.add(
                session,
                ProjectUpdatedV1(
                    project_id=project_id,
                    holder_id=updated["holder_id"],
                    updated_at=now,
                    changed_fields=public,
                    project=details(updated),
                ),
                subject=str(project_id),
            )
    return view(decision, updated)


async def withdraw_project(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    decision: Decision,
    project_id: UUID,
) -> dict[str, Any]:
    """The holder (or an admin) takes a project off the platform (kept, no longer listed)."""
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        row = await _locked_own(session, decision, project_id)
        if row["status"] == "withdrawn":
            return view(decision, row)
        updated = await rows.one(
            session,
            update(projects)
            .where(projects.c.id == project_id)
            .values(
                status="withdrawn",
                withdrawn_at=now,
                updated_at=now,
                revision=projects.c.revision + 1,
            )
            .returning(projects),
        )
        await outbox.add(
            session,
            ProjectWithdrawnV1(project_id=project_id, withdrawn_at=now, reason="withdrawn"),
            subject=str(project_id),
        )
    return view(decision, updated)


def _filtered(statement: Select[Any], q: ProjectQuery, decision: Decision) -> Select[Any]:
    statement = statement.where(decision.where(SCOPE_COLUMNS))
    if q.project_id is not None:
        statement = statement.where(projects.c.id == q.project_id)
    elif not q.include_withdrawn:
        statement = statement.where(projects.c.status == "open")
    for name in ("sector", "region", "prefecture", "stage"):
        value = getattr(q, name)
        if value is not None:
            statement = statement.where(projects.c[name] == value)
    if q.amount_min_xof is not None:
        statement = statement.where(_amount_xof() >= q.amount_min_xof)
    if q.amount_max_xof is not None:
        statement = statement.where(_amount_xof() <= q.amount_max_xof)
    return statement


async def find_projects(
    *,
    sessions: async_sessionmaker[AsyncSession],
    audit: AuditTrail,
    decision: Decision,
    context: AccessContext,
    query: ProjectQuery,
) -> list[dict[str, Any]]:
    """Projects within the caller's scope matching ``query``: best text match first when
    searching words, otherwise the newest first. Staff reads of a holder's personal
    data are audited in the same transaction."""
    statement = _filtered(select(projects), query, decision)
    if query.text:
        words = func.websearch_to_tsquery("french", query.text)
        statement = statement.where(projects.c.search.op("@@")(words)).order_by(
            func.ts_rank_cd(projects.c.search, words).desc(), projects.c.id.desc()
        )
    else:
        statement = statement.order_by(projects.c.submitted_at.desc(), projects.c.id.desc())
    statement = statement.offset(query.offset).limit(query.limit)
    async with sessions() as session, session.begin():
        found = await rows.every(session, statement)
        views = [view(decision, row) for row in found]
        # One entry per project whose holder's personal data someone else received.
        await audit.record_personal_reads(
            session, decision, context, found, views, person="holder_id"
        )
    return views


def _organisation(principal: Principal) -> str:
    if principal.has(Role.PARTNER_CASEWORKER) and principal.partner_org:
        return principal.partner_org
    if principal.has(Role.EMBASSY_OFFICER) and principal.embassies:
        return "embassy:" + ",".join(sorted(principal.embassies))
    if principal.has(Role.MINISTRY_COORDINATOR):
        return "ministry"
    return "platform"


def _claim(principal: Principal, name: str) -> str | None:
    value = principal.claims.get(name)
    return value if isinstance(value, str) and value.strip() else None


async def express_interest(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    read: Decision,
    decision: Decision,
    project_id: UUID,
    message: str | None,
) -> tuple[dict[str, Any], bool]:
    """A national actor or partner says they are interested; the holder is told
    (matching.interest.expressed). Once per person and project: a repeat returns the
    first expression of interest."""
    principal = decision.principal
    now = datetime.now(UTC)
    acting = decision.roles[0]
    async with sessions() as session, session.begin():
        project = await rows.first(
            session, select(projects).where(projects.c.id == project_id, read.where(SCOPE_COLUMNS))
        )
        if project is None:
            raise ProjectNotFound()
        if project["status"] != "open":
            raise ProjectClosed()
        interest_id = uuid_compat.uuid7()
        row = await rows.first(
            session,
            insert(project_interests)
            .values(
                id=interest_id,
                project_id=project_id,
                organisation=_organisation(principal),
                partner_org=principal.partner_org
                if principal.has(Role.PARTNER_CASEWORKER)
                else None,
                actor_subject=principal.subject,
                actor_role=acting,
                actor_name=_claim(principal, "name"),
                actor_email=_claim(principal, "email"),
                message=message,
                expressed_at=now,
            )
            .on_conflict_do_nothing(constraint="project_interests_once")
            .returning(project_interests),
        )
        if row is None:
            existing = await rows.one(
                session,
                select(project_interests).where(
                    project_interests.c.project_id == project_id,
                    project_interests.c.actor_subject == principal.subject,
                ),
            )
            return {f: existing[f] for f in INTEREST_FIELDS}, False
        await outbox.add(
            session,
            InterestExpressedV1(
                interest_id=interest_id,
                project_id=project_id,
                holder_id=project["holder_id"],
                project_title=project["title"],
                organisation=row["organisation"],
                actor_role=acting,
                message=message,
                expressed_at=now,
            ),
            subject=str(project_id),
        )
    return {f: row[f] for f in INTEREST_FIELDS}, True


async def list_interests(
    *,
    sessions: async_sessionmaker[AsyncSession],
    read: Decision,
    decision: Decision,
    project_id: UUID,
    offset: int,
    limit: int,
) -> list[dict[str, Any]]:
    """The interest expressed in one project that the caller may see: all of it for
    the holder and the ministry, a partner's own organisation's for a partner.
    Raises ProjectNotFound when the project is outside the caller's read scope."""
    async with sessions() as session:
        visible = (
            await session.execute(
                select(projects.c.id).where(projects.c.id == project_id, read.where(SCOPE_COLUMNS))
            )
        ).first()
        if visible is None:
            raise ProjectNotFound()
        found = await rows.every(
            session,
            select(project_interests, projects.c.holder_id)
            .join(projects, project_interests.c.project_id == projects.c.id)
            .where(
                project_interests.c.project_id == project_id,
                decision.where(INTEREST_SCOPE_COLUMNS),
            )
            .order_by(project_interests.c.expressed_at, project_interests.c.id)
            .offset(offset)
            .limit(limit),
        )
    return [decision.project(row, INTEREST_FIELDS) for row in found]


async def erase_holder(session: AsyncSession, outbox: OutboxWriter, member_id: UUID) -> int:
    """Erasure: delete the person's projects and the interest shown in them.

    A project is the holder's own words about their own plans; anonymised, it would
    still describe them. Each deleted project is announced (matching.project.withdrawn,
    reason holder_erased) so that every copy elsewhere is deleted too.
    """
    now = datetime.now(UTC)
    ids = list(
        (
            await session.execute(
                delete(projects).where(projects.c.holder_id == member_id).returning(projects.c.id)
            )
        ).scalars()
    )
    if ids:
        await outbox.add_many(
            session,
            [
                ProjectWithdrawnV1(project_id=pid, withdrawn_at=now, reason="holder_erased")
                for pid in ids
            ],
        )
    return len(ids)


async def merge_holder(session: AsyncSession, merged_id: UUID, survivor_id: UUID) -> None:
    """Merge: the merged record's projects become the survivor's."""
    await session.execute(
        update(projects).where(projects.c.holder_id == merged_id).values(holder_id=survivor_id)
    )
