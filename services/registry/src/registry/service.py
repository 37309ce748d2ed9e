"""Registry use cases: each one state change plus its events, in one transaction.

Every read of members goes through :func:`find_members`: the caller's policy
decision restricts the rows in SQL, projects the fields each row may show, and
the audit trail records, in the same transaction, every record that someone
other than the person received.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog
import uuid_utils.compat as uuid_compat
from sqlalchemy import Select, and_, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.contracts import MemberRegisteredV1, RegistryAuditRecordedV1
from diaspora_events.outbox import OutboxWriter
from diaspora_identity.audit import AccessContext, AuditEntry, AuditTrail
from diaspora_identity.jurisdictions import Jurisdictions
from diaspora_identity.policy import Decision
from diaspora_identity.principal import Role
from registry.adapters.orm import audit_log, members
from registry.domain import Member, RegisterMember

log = structlog.get_logger(__name__)

# What a member record shows, in order; the policy's field rules cut it down per caller.
MEMBER_FIELDS: tuple[str, ...] = (
    "id",
    "given_name",
    "family_name",
    "date_of_birth",
    "country_of_residence",
    "embassy_id",
    "email",
    "phone",
    "preferred_language",
    "registered_at",
    "registered_by",
)
# The policy's scope attributes, as columns of the members table.
SCOPE_COLUMNS = {
    "id": members.c.id,
    "owner_subject": members.c.owner_subject,
    "embassy_id": members.c.embassy_id,
}
ACCESS_LOG_SCOPE_COLUMNS = {"owner_subject": members.c.owner_subject, "member_id": members.c.id}


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before for a different request."""


class AlreadyRegistered(Exception):
    """The caller's identity is already linked to a member."""

    def __init__(self, member_id: UUID) -> None:
        super().__init__(str(member_id))
        self.member_id = member_id


class OutsideJurisdiction(Exception):
    """An officer tried to register someone living outside their embassies' jurisdiction."""


def audit_event(entry: AuditEntry) -> RegistryAuditRecordedV1:
    return RegistryAuditRecordedV1(
        audit_id=entry.audit_id,
        occurred_at=entry.occurred_at,
        actor_subject=entry.actor_subject,
        actor_roles=entry.actor_roles,
        actor_client=entry.actor_client,
        actor_is_service=entry.actor_is_service,
        action=entry.action,
        resource=entry.resource,
        record_id=entry.record_id,
        fields=entry.fields,
        client_address=entry.client_address,
        request_id=entry.request_id,
        trace_id=entry.trace_id,
    )


def _digest(command: RegisterMember, caller: str) -> str:
    body = {k: v for k, v in asdict(command).items() if k != "idempotency_key"}
    # The caller is part of the request: another caller reusing a key gets a conflict,
    # never someone else's member.
    body["_caller"] = caller
    return hashlib.sha256(json.dumps(body, default=str, sort_keys=True).encode()).hexdigest()


def _member(row: Any) -> Member:
    return Member(**{f: getattr(row, f) for f in Member.__dataclass_fields__})


async def register_member(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    audit: AuditTrail,
    jurisdictions: Jurisdictions,
    decision: Decision,
    context: AccessContext,
    command: RegisterMember,
) -> tuple[Member, bool]:
    """Register a person; returns the member and whether it was created now.

    Staff (an officer within the jurisdiction, an admin) file it for the person
    (assisted registration, audited); a citizen registers themselves and their
    token's subject is linked to the member. A repeated request with the same
    Idempotency-Key returns the first result.
    """
    principal = decision.principal
    member_id = uuid_compat.uuid7()
    embassy_id = jurisdictions.embassy_for(command.country_of_residence)
    staff = [
        g
        for g in decision.reaching({"id": member_id, "embassy_id": embassy_id})
        if g.role is not Role.CITIZEN
    ]
    if staff:
        owner_subject, registered_by, by_role = None, principal.subject, staff[0].role.value
    elif Role.CITIZEN in principal.roles and decision.permits(
        {"id": member_id, "owner_subject": principal.subject}
    ):
        owner_subject, registered_by, by_role = principal.subject, None, None
    else:
        raise OutsideJurisdiction(command.country_of_residence)

    digest = _digest(command, principal.subject)
    if command.idempotency_key:
        existing = await _by_idempotency_key(sessions, command.idempotency_key, digest)
        if existing:
            return existing, False
    if owner_subject is not None:
        linked = await _by_owner(sessions, owner_subject)
        if linked is not None:
            raise AlreadyRegistered(linked.id)
    member = Member(
        id=member_id,
        given_name=command.given_name,
        family_name=command.family_name,
        date_of_birth=command.date_of_birth,
        country_of_residence=command.country_of_residence,
        email=command.email,
        phone=command.phone,
        preferred_language=command.preferred_language,
        registered_at=datetime.now(UTC),
        embassy_id=embassy_id,
        owner_subject=owner_subject,
        registered_by=registered_by,
        registered_by_role=by_role,
    )
    try:
        async with sessions() as session, session.begin():
            await session.execute(
                members.insert().values(
                    **asdict(member), idempotency_key=command.idempotency_key, request_digest=digest
                )
            )
            await outbox.add(
                session,
                MemberRegisteredV1(
                    member_id=member.id,
                    given_name=member.given_name,
                    family_name=member.family_name,
                    date_of_birth=member.date_of_birth,
                    email=member.email,
                    phone=member.phone,
                    country_of_residence=member.country_of_residence,
                    preferred_language=member.preferred_language,
                    registered_at=member.registered_at,
                ),
                subject=str(member.id),
            )
            if owner_subject is None:
                await audit.record(session, decision, context, [(member.id, MEMBER_FIELDS)])
    except IntegrityError:
        # Two requests with one Idempotency-Key (or one person) raced; the other one won.
        if command.idempotency_key:
            existing = await _by_idempotency_key(sessions, command.idempotency_key, digest)
            if existing:
                return existing, False
        if owner_subject is not None:
            linked = await _by_owner(sessions, owner_subject)
            if linked is not None:
                raise AlreadyRegistered(linked.id) from None
        raise
    return member, True


async def _by_idempotency_key(
    sessions: async_sessionmaker[AsyncSession], key: str, digest: str
) -> Member | None:
    async with sessions() as session:
        row = (
            await session.execute(select(members).where(members.c.idempotency_key == key))
        ).first()
    if row is None:
        return None
    if row.request_digest != digest:
        raise IdempotencyConflict(key)
    return _member(row)


async def _by_owner(sessions: async_sessionmaker[AsyncSession], subject: str) -> Member | None:
    async with sessions() as session:
        row = (
            await session.execute(select(members).where(members.c.owner_subject == subject))
        ).first()
    return _member(row) if row else None


@dataclass(frozen=True)
class MemberQuery:
    """Filters of a member read: one id, or a list / search / export with filters."""

    member_id: UUID | None = None
    country: str | None = None
    embassy: str | None = None
    text: str | None = None
    offset: int = 0
    limit: int | None = 50


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _apply(query: Select[Any], q: MemberQuery) -> Select[Any]:
    if q.member_id is not None:
        query = query.where(members.c.id == q.member_id)
    if q.country is not None:
        query = query.where(members.c.country_of_residence == q.country)
    if q.embassy is not None:
        query = query.where(members.c.embassy_id == q.embassy)
    if q.text:
        # Every word must appear in the name, accents and case ignored.
        name = func.unaccent(members.c.given_name + " " + members.c.family_name)
        words = [w for w in q.text.split() if w]
        query = query.where(
            and_(*(name.ilike(func.unaccent(f"%{_escape_like(w)}%"), escape="\\") for w in words))
        )
    return query


async def find_members(
    *,
    sessions: async_sessionmaker[AsyncSession],
    audit: AuditTrail,
    decision: Decision,
    context: AccessContext,
    query: MemberQuery,
) -> list[dict[str, Any]]:
    """The members the caller may see matching ``query``, each with the fields they may see.

    The one read path of get, list, search and export: scope in SQL, field rules
    per row, and an audit entry per record received by anyone but the person.
    """
    statement = _apply(select(members).where(decision.where(SCOPE_COLUMNS)), query).order_by(
        members.c.id
    )
    if query.offset:
        statement = statement.offset(query.offset)
    if query.limit is not None:
        statement = statement.limit(query.limit)
    async with sessions() as session, session.begin():
        rows: Sequence[Mapping[str, Any]] = (await session.execute(statement)).mappings().all()
        views = [decision.project(row, MEMBER_FIELDS) for row in rows]
        accesses = [
            (row["id"], list(view))
            for row, view in zip(rows, views, strict=True)
            if view and not decision.is_own(row)
        ]
        await audit.record(session, decision, context, accesses)
    return views


async def member_in_scope(
    *, sessions: async_sessionmaker[AsyncSession], decision: Decision, member_id: UUID
) -> bool:
    async with sessions() as session:
        found = (
            await session.execute(
                select(members.c.id).where(
                    members.c.id == member_id, decision.where(ACCESS_LOG_SCOPE_COLUMNS)
                )
            )
        ).first()
    return found is not None


ACCESS_LOG_FIELDS = (
    "occurred_at",
    "action",
    "actor_roles",
    "actor_subject",
    "actor_is_service",
    "fields",
)


async def access_log(
    *,
    sessions: async_sessionmaker[AsyncSession],
    member_id: UUID,
    before: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Who accessed a member's record, newest first."""
    statement = (
        select(*(audit_log.c[f] for f in ACCESS_LOG_FIELDS))
        .where(audit_log.c.record_id == member_id)
        .order_by(audit_log.c.occurred_at.desc(), audit_log.c.id.desc())
        .limit(limit)
    )
    if before is not None:
        statement = statement.where(audit_log.c.occurred_at < before)
    async with sessions() as session:
        return [dict(r) for r in (await session.execute(statement)).mappings().all()]


SMALL_COUNT = 5


async def member_statistics(
    *, sessions: async_sessionmaker[AsyncSession], decision: Decision, by: str
) -> list[dict[str, Any]]:
    """Member counts per embassy or country within the caller's scope; counts under
    :data:`SMALL_COUNT` are suppressed (shown as null) to protect people."""
    column = members.c.embassy_id if by == "embassy" else members.c.country_of_residence
    statement = (
        select(column.label("key"), func.count().label("members"))
        .where(decision.where(SCOPE_COLUMNS))
        .group_by(column)
        .order_by(column)
    )
    async with sessions() as session:
        rows = (await session.execute(statement)).all()
    return [
        {by: row.key, "members": row.members if row.members >= SMALL_COUNT else None}
        for row in rows
    ]


async def reconcile_embassies(
    sessions: async_sessionmaker[AsyncSession], jurisdictions: Jurisdictions
) -> int:
    """Re-derive each member's embassy from the jurisdictions (the file may have changed)."""
    derived = jurisdictions.sql_embassy_of(members.c.country_of_residence)
    async with sessions() as session, session.begin():
        result = await session.execute(
            update(members).where(members.c.embassy_id != derived).values(embassy_id=derived)
        )
    changed = int(getattr(result, "rowcount", 0) or 0)
    if changed:
        log.info("member_embassies_reassigned", members=changed)
    return changed
