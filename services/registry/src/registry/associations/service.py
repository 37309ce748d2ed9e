"""Association use cases: each one state change, its history entry and its event, in one
transaction.

Scoping follows the policy table (resources ``association`` and
``association_member``, docs/security.md): reads restrict rows in SQL with the
caller's ``read``/``list`` grant *and* their ``update`` grant (whoever may change an
association sees all of it), cut fields per row, and audit every record whose
personal fields (officers, member links, email) someone other than its contact
received.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog
import uuid_utils.compat as uuid_compat
from sqlalchemy import ColumnElement, Select, and_, delete, false, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.contracts.registry import (
    AssociationOfficer,
    AssociationProfile,
    AssociationRegisteredV1,
    AssociationUpdatedV1,
    City,
    Partnership,
)
from diaspora_events.outbox import OutboxWriter
from diaspora_identity.audit import AccessContext, AuditTrail
from diaspora_identity.jurisdictions import Jurisdictions
from diaspora_identity.policy import Decision, Forbidden, Policy
from diaspora_identity.principal import Principal, Role
from registry.associations import domain
from registry.associations.tables import association_history, association_members, associations
from registry.members.tables import members
from registry.tables import outbox

log = structlog.get_logger(__name__)

RESOURCE = "association"
LINK_RESOURCE = "association_member"

# What an association record shows, in order; the policy's field rules cut it down.
ASSOCIATION_FIELDS: tuple[str, ...] = (
    "id",
    "name",
    "country",
    "city",
    "embassy_id",
    "domains",
    "partnerships",
    "website",
    "status",
    "registered_at",
    "updated_at",
    "dissolved_at",
    "version",
    "email",
    "officers",
    "member_ids",
    "registered_by",
)
SCOPE_COLUMNS: dict[str, Any] = {
    "contact_subject": associations.c.contact_subject,
    "contact_member_id": associations.c.contact_member_id,
    "embassy_id": associations.c.embassy_id,
}
ASSOCIATION_EVENT_TYPES = ("registry.association.registered", "registry.association.updated")


class AssociationNotFound(Exception):
    """No such association within the caller's scope."""


class MemberNotFound(Exception):
    """No such member within the caller's scope."""


class UnknownMembers(Exception):
    """Officers name member ids that do not exist (or that the caller may not link)."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__(", ".join(fields))
        self.fields = fields


class OutsideJurisdiction(Exception):
    """A staff member tried to place an association outside their jurisdiction."""


class NotRegistered(Exception):
    """A citizen without a member record tried to register an association."""


class Dissolved(Exception):
    """The association is dissolved: its record no longer changes."""


class VersionMismatch(Exception):
    """If-Match named another version than the current one."""

    def __init__(self, current: int) -> None:
        super().__init__(str(current))
        self.current = current


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before for a different request."""


# -- commands ------------------------------------------------------------------------


@dataclass(frozen=True)
class OfficerInput:
    role: str
    name: str
    member_id: UUID | None = None


@dataclass(frozen=True)
class RegisterAssociation:
    name: str
    country: str
    city: str | None = None
    domains: list[str] = field(default_factory=list)
    officers: list[OfficerInput] = field(default_factory=list)
    partnerships: list[domain.Partnership] = field(default_factory=list)
    email: str | None = None
    website: str | None = None
    idempotency_key: str | None = None

    def digest(self, caller: str) -> str:
        body = {
            "name": self.name,
            "country": self.country,
            "city": self.city,
            "domains": self.domains,
            "officers": [o.__dict__ for o in self.officers],
            "partnerships": [p.__dict__ for p in self.partnerships],
            "email": self.email,
            "website": self.website,
            # Another caller reusing a key gets a conflict, never someone else's record.
            "_caller": caller,
        }
        return hashlib.sha256(json.dumps(body, default=str, sort_keys=True).encode()).hexdigest()


# Fields an update may set (absent: unchanged).
UPDATABLE = ("name", "country", "city", "domains", "officers", "partnerships", "email", "website")


@dataclass(frozen=True)
class AssociationQuery:
    association_id: UUID | None = None
    country: str | None = None
    embassy: str | None = None
    city: str | None = None
    domain: str | None = None
    region: str | None = None
    prefecture_slug: str | None = None
    text: str | None = None
    status: str | None = "active"  # None: every status
    offset: int = 0
    limit: int | None = 50


# -- access --------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """A read's grants: the read/list decision, widened by the caller's update grant."""

    read: Decision
    manage: Decision | None

    @classmethod
    def of(cls, policy: Policy, principal: Principal, action: str) -> Access:
        read = policy.decide(principal, RESOURCE, action)
        try:
            manage: Decision | None = policy.decide(principal, RESOURCE, "update")
        except Forbidden:
            manage = None
        return cls(read, manage)

    def where(self) -> ColumnElement[bool]:
        parts = [self.read.where(SCOPE_COLUMNS)]
        if self.manage is not None:
            parts.append(self.manage.where(SCOPE_COLUMNS))
        return or_(*parts)

    def fields(self, record: Mapping[str, Any]) -> list[str]:
        visible = set(self.read.visible_fields(record, ASSOCIATION_FIELDS))
        if self.manage is not None:
            visible |= set(self.manage.visible_fields(record, ASSOCIATION_FIELDS))
        return [f for f in ASSOCIATION_FIELDS if f in visible]

    def is_own(self, record: Mapping[str, Any]) -> bool:
        return self.read.is_own(record)


def _personal(decision: Decision, fields: Sequence[str]) -> list[str]:
    return [f for f in fields if f in decision.policy.personal_fields]


# -- rows and records -------------------------------------------------------------------


def _city(row: Mapping[str, Any]) -> domain.City | None:
    if row["city_name"] is None:
        return None
    return domain.City(
        name=row["city_name"],
        geonames_id=row["city_geonames_id"],
        latitude=row["city_latitude"],
        longitude=row["city_longitude"],
    )


def _association(row: Mapping[str, Any], member_ids: list[UUID]) -> domain.Association:
    return domain.Association(
        id=row["id"],
        name=row["name"],
        country=row["country"],
        city=_city(row),
        embassy_id=row["embassy_id"],
        domains=list(row["domains"]),
        officers=[domain.Officer.of(o) for o in row["officers"]],
        partnerships=[domain.Partnership.of(p) for p in row["partnerships"]],
        email=row["email"],
        website=row["website"],
        status=row["status"],
        registered_at=row["registered_at"],
        updated_at=row["updated_at"],
        version=row["version"],
        registered_by=row["registered_by"],
        dissolved_at=row["dissolved_at"],
        member_ids=sorted(member_ids),
    )


def _row_values(a: domain.Association) -> dict[str, Any]:
    return {
        "name": a.name,
        "country": a.country,
        "city_name": a.city.name if a.city else None,
        "city_geonames_id": a.city.geonames_id if a.city else None,
        "city_latitude": a.city.latitude if a.city else None,
        "city_longitude": a.city.longitude if a.city else None,
        "embassy_id": a.embassy_id,
        "domains": a.domains,
        "officers": [o.as_dict() for o in a.officers],
        "partnerships": [p.as_dict() for p in a.partnerships],
        "email": a.email,
        "website": a.website,
        "status": a.status,
        "dissolved_at": a.dissolved_at,
        "updated_at": a.updated_at,
        "version": a.version,
    }


def record(a: domain.Association, scope: Mapping[str, Any]) -> dict[str, Any]:
    """Every field of the record (before projection), plus the scope attributes."""
    return {
        "id": a.id,
        "name": a.name,
        "country": a.country,
        "city": a.city.as_dict() if a.city else None,
        "embassy_id": a.embassy_id,
        "domains": a.domains,
        "partnerships": [
            {
                "region": p.region,
                "prefecture": p.prefecture,
                "prefecture_slug": p.prefecture_slug,
                "description": p.description,
            }
            for p in a.partnerships
        ],
        "website": a.website,
        "status": a.status,
        "registered_at": a.registered_at,
        "updated_at": a.updated_at,
        "dissolved_at": a.dissolved_at,
        "version": a.version,
        "email": a.email,
        "officers": [
            {"role": o.role, "name": o.name, "member_id": o.member_id} for o in a.officers
        ],
        "member_ids": a.member_ids,
        "registered_by": a.registered_by,
        "contact_subject": scope.get("contact_subject"),
        "contact_member_id": scope.get("contact_member_id"),
    }


def profile(a: domain.Association) -> AssociationProfile:
    return AssociationProfile(
        name=a.name,
        country=a.country,
        city=City(**a.city.as_dict()) if a.city else None,
        embassy_id=a.embassy_id,
        domains=a.domains,
        officers=[
            AssociationOfficer(role=o.role, name=o.name, member_id=o.member_id) for o in a.officers
        ],
        member_ids=a.member_ids,
        partnerships=[
            Partnership(region=p.region, prefecture=p.prefecture, description=p.description)
            for p in a.partnerships
        ],
        email=a.email,
        website=a.website,
        status=a.status,
        dissolved_at=a.dissolved_at,
    )


async def _member_ids(session: AsyncSession, ids: Sequence[UUID]) -> dict[UUID, list[UUID]]:
    found: dict[UUID, list[UUID]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = await session.execute(
        select(association_members.c.association_id, association_members.c.member_id)
        .where(association_members.c.association_id.in_(list(ids)))
        .order_by(association_members.c.member_id)
    )
    for association_id, member_id in rows:
        found[association_id].append(member_id)
    return found


async def _lock(
    session: AsyncSession, association_id: UUID, scope: ColumnElement[bool]
) -> tuple[domain.Association, dict[str, Any]]:
    """The association, locked for the rest of the transaction (changes are serialised)."""
    row = (
        (
            await session.execute(
                select(associations)
                .where(associations.c.id == association_id, scope)
                .with_for_update()
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise AssociationNotFound(str(association_id))
    links = await _member_ids(session, [association_id])
    return _association(dict(row), links[association_id]), dict(row)


@dataclass(frozen=True)
class _Member:
    id: UUID
    owner_subject: str | None
    embassy_id: str
    name: str

    def scope(self) -> dict[str, Any]:
        """The member as the ``association_member`` policy resource sees it."""
        return {
            "member_id": self.id,
            "member_owner_subject": self.owner_subject,
            "member_embassy_id": self.embassy_id,
        }

    def member_scope(self) -> dict[str, Any]:
        """The member as the ``member`` policy resource sees it."""
        return {"id": self.id, "owner_subject": self.owner_subject, "embassy_id": self.embassy_id}


async def _members(session: AsyncSession, ids: Sequence[UUID]) -> dict[UUID, _Member]:
    if not ids:
        return {}
    rows = await session.execute(
        select(
            members.c.id,
            members.c.owner_subject,
            members.c.embassy_id,
            members.c.given_name,
            members.c.family_name,
        ).where(members.c.id.in_(list(set(ids))))
    )
    return {
        r.id: _Member(r.id, r.owner_subject, r.embassy_id, f"{r.given_name} {r.family_name}")
        for r in rows
    }


async def _own_member(session: AsyncSession, principal: Principal) -> _Member | None:
    condition = members.c.owner_subject == principal.subject
    if principal.member_id is not None:
        condition = or_(condition, members.c.id == principal.member_id)
    row = (
        await session.execute(select(members.c.id).where(condition).order_by(members.c.id).limit(1))
    ).first()
    if row is None:
        return None
    return (await _members(session, [row.id]))[row.id]


# -- history, events -------------------------------------------------------------------


async def _write_change(
    session: AsyncSession,
    *,
    outbox_writer: OutboxWriter,
    before: domain.Association | None,
    after: domain.Association,
    action: str,
    principal: Principal,
    roles: list[str],
    record_changes: bool = True,
) -> list[str]:
    """The history entry and the event of a change (the row itself is written by the caller)."""
    changes = domain.changes(before, after)
    changed = sorted(changes)
    await session.execute(
        association_history.insert().values(
            association_id=after.id,
            version=after.version,
            at=after.updated_at,
            action=action,
            actor_subject=principal.subject,
            actor_roles=roles,
            changed_fields=changed,
            changes=changes if record_changes else {},
        )
    )
    event: AssociationRegisteredV1 | AssociationUpdatedV1
    if before is None:
        event = AssociationRegisteredV1(
            association_id=after.id, registered_at=after.registered_at, association=profile(after)
        )
    else:
        event = AssociationUpdatedV1(
            association_id=after.id,
            updated_at=after.updated_at,
            changed_fields=changed,
            association=profile(after),
        )
    await outbox_writer.add(session, event, subject=str(after.id))
    return changed


# -- create ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Services:
    """What the use cases need from the composition root."""

    sessions: async_sessionmaker[AsyncSession]
    outbox: OutboxWriter
    audit: AuditTrail
    policy: Policy
    jurisdictions: Jurisdictions


async def _check_officers(
    session: AsyncSession,
    *,
    services: Services,
    principal: Principal,
    officers: Sequence[OfficerInput],
    staff: bool,
    own: _Member | None,
    linked: Sequence[UUID],
) -> dict[UUID, _Member]:
    """Officers' member ids must name members the caller may link: staff, members within
    their members' scope; the association's contact, themselves or members who joined."""
    wanted = [o.member_id for o in officers if o.member_id is not None]
    found = await _members(session, wanted)
    member_read: Decision | None = None
    if staff:
        try:
            member_read = services.policy.decide(principal, "member", "read")
        except Forbidden:
            member_read = None
    bad: list[str] = []
    for index, officer in enumerate(officers):
        if officer.member_id is None:
            continue
        member = found.get(officer.member_id)
        allowed = member is not None and (
            (member_read is not None and member_read.permits(member.member_scope()))
            or (own is not None and member.id == own.id)
            or member.id in linked
        )
        if not allowed:
            bad.append(f"officers.{index}.member_id")
    if bad:
        # One answer for "no such member" and "not yours to link": existence is not revealed.
        raise UnknownMembers(bad)
    return found


async def register_association(
    *,
    services: Services,
    decision: Decision,
    context: AccessContext,
    command: RegisterAssociation,
) -> tuple[dict[str, Any], bool]:
    """Register an association; returns its record (as the caller may see it) and whether
    it was created now. A citizen must be a registered member and becomes its contact
    (linked as a member, listed as its "contact" officer unless already listed); staff
    file it for the association within their jurisdiction (audited)."""
    principal = decision.principal
    country = domain.country(command.country)
    embassy_id = services.jurisdictions.embassy_for(country)
    candidate = {"embassy_id": embassy_id, "contact_subject": None, "contact_member_id": None}
    staff_grants = [g for g in decision.reaching(candidate) if g.role is not Role.CITIZEN]
    digest = command.digest(principal.subject)
    if command.idempotency_key:
        existing = await _by_idempotency_key(services, decision, command.idempotency_key, digest)
        if existing is not None:
            return existing, False

    try:
        return await _register(
            services=services,
            decision=decision,
            context=context,
            command=command,
            country=country,
            embassy_id=embassy_id,
            staff_role=staff_grants[0].role.value if staff_grants else None,
            digest=digest,
        ), True
    except IntegrityError:
        # Two requests with one Idempotency-Key raced; the other one won.
        if command.idempotency_key:
            existing = await _by_idempotency_key(
                services, decision, command.idempotency_key, digest
            )
            if existing is not None:
                return existing, False
        raise


async def _register(
    *,
    services: Services,
    decision: Decision,
    context: AccessContext,
    command: RegisterAssociation,
    country: str,
    embassy_id: str,
    staff_role: str | None,
    digest: str,
) -> dict[str, Any]:
    principal = decision.principal
    association_id = uuid_compat.uuid7()
    now = datetime.now(UTC)
    async with services.sessions() as session, session.begin():
        own: _Member | None = None
        if staff_role is not None:
            role = staff_role
        elif Role.CITIZEN in principal.roles:
            own = await _own_member(session, principal)
            if own is None:
                raise NotRegistered()
            role = Role.CITIZEN.value
        else:
            raise OutsideJurisdiction(country)
        await _check_officers(
            session,
            services=services,
            principal=principal,
            officers=command.officers,
            staff=staff_role is not None,
            own=own,
            linked=[],
        )
        officers = [domain.Officer(o.role, o.name, o.member_id) for o in command.officers]
        # Officers linked to members are members: staff link them (basis "staff"); a
        # citizen can only name themselves, and joins the association they register.
        links: dict[UUID, str] = {o.member_id: "staff" for o in officers if o.member_id}
        if own is not None:
            if all(o.member_id != own.id for o in officers):
                officers.append(domain.Officer("contact", own.name, own.id))
            links = {own.id: "self"}
        association = domain.Association(
            id=association_id,
            name=command.name,
            country=country,
            city=domain.resolve_city(country, command.city),
            embassy_id=embassy_id,
            domains=domain.domains(command.domains),
            officers=officers,
            partnerships=list(command.partnerships),
            email=command.email,
            website=command.website,
            status="active",
            registered_at=now,
            updated_at=now,
            version=1,
            registered_by=principal.subject,
            member_ids=sorted(links),
        )
        scope = {
            "contact_subject": principal.subject if own else None,
            "contact_member_id": own.id if own else None,
        }
        await session.execute(
            associations.insert().values(
                id=association_id,
                registered_at=now,
                registered_by=principal.subject,
                registered_by_role=role,
                idempotency_key=command.idempotency_key,
                request_digest=digest,
                **scope,
                **_row_values(association),
            )
        )
        if links:
            await session.execute(
                association_members.insert(),
                [
                    {
                        "association_id": association_id,
                        "member_id": member_id,
                        "linked_at": now,
                        "linked_by": principal.subject,
                        "basis": basis,
                    }
                    for member_id, basis in links.items()
                ],
            )
        await _write_change(
            session,
            outbox_writer=services.outbox,
            before=None,
            after=association,
            action="registered",
            principal=principal,
            roles=[role],
        )
        full = record(association, scope)
        view = decision.project(full, ASSOCIATION_FIELDS)
        if own is None:
            await services.audit.record(session, decision, context, [(association_id, list(view))])
    return view


async def _by_idempotency_key(
    services: Services, decision: Decision, key: str, digest: str
) -> dict[str, Any] | None:
    async with services.sessions() as session:
        row = (
            (
                await session.execute(
                    select(associations).where(associations.c.idempotency_key == key)
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        if row["request_digest"] != digest:
            raise IdempotencyConflict(key)
        links = await _member_ids(session, [row["id"]])
    full = record(_association(dict(row), links[row["id"]]), dict(row))
    return decision.project(full, ASSOCIATION_FIELDS)


# -- reads -------------------------------------------------------------------------------


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(statement: Select[Any], q: AssociationQuery) -> Select[Any]:
    c = associations.c
    if q.association_id is not None:
        statement = statement.where(c.id == q.association_id)
    if q.status is not None:
        statement = statement.where(c.status == q.status)
    if q.country is not None:
        statement = statement.where(c.country == q.country)
    if q.embassy is not None:
        statement = statement.where(c.embassy_id == q.embassy)
    if q.city:
        wanted = func.unaccent(func.lower(q.city))
        by_name = func.unaccent(func.lower(c.city_name)) == wanted
        statement = statement.where(by_name)
    if q.domain is not None:
        statement = statement.where(c.domains.contains([q.domain]))
    if q.region is not None:
        statement = statement.where(c.partnerships.contains([{"region": q.region}]))
    if q.prefecture_slug is not None:
        statement = statement.where(
            c.partnerships.contains([{"prefecture_slug": q.prefecture_slug}])
        )
    if q.text:
        name = func.unaccent(c.name)
        words = [w for w in q.text.split() if w]
        statement = statement.where(
            and_(*(name.ilike(func.unaccent(f"%{_escape_like(w)}%"), escape="\\") for w in words))
        )
    return statement


async def find_associations(
    *,
    services: Services,
    access: Access,
    context: AccessContext,
    query: AssociationQuery,
) -> list[dict[str, Any]]:
    """The associations the caller may see matching ``query``, each with the fields they
    may see; staff reads of personal fields are audited in the same transaction."""
    statement = _filtered(select(associations).where(access.where()), query).order_by(
        func.lower(func.unaccent(associations.c.name)), associations.c.id
    )
    if query.offset:
        statement = statement.offset(query.offset)
    if query.limit is not None:
        statement = statement.limit(query.limit)
    async with services.sessions() as session, session.begin():
        rows = (await session.execute(statement)).mappings().all()
        links = await _member_ids(session, [r["id"] for r in rows])
        views: list[dict[str, Any]] = []
        accesses: list[tuple[UUID, list[str]]] = []
        for row in rows:
            full = record(_association(row, links[row["id"]]), row)
            fields = access.fields(full)
            views.append({f: full[f] for f in fields})
            personal = _personal(access.read, fields)
            if personal and not access.is_own(full):
                accesses.append((row["id"], fields))
        await services.audit.record(session, access.read, context, accesses)
    return views


async def association_history_of(
    *,
    services: Services,
    decision: Decision,
    context: AccessContext,
    association_id: UUID,
    offset: int,
    limit: int,
) -> list[dict[str, Any]]:
    """Every change of an association, oldest first: who, when, which fields, before and
    after (personal data: its contact and staff in scope only, staff reads audited)."""
    async with services.sessions() as session, session.begin():
        found = (
            (
                await session.execute(
                    select(associations).where(
                        associations.c.id == association_id, decision.where(SCOPE_COLUMNS)
                    )
                )
            )
            .mappings()
            .first()
        )
        if found is None:
            raise AssociationNotFound(str(association_id))
        rows = (
            (
                await session.execute(
                    select(association_history)
                    .where(association_history.c.association_id == association_id)
                    .order_by(association_history.c.version, association_history.c.id)
                    .offset(offset)
                    .limit(limit)
                )
            )
            .mappings()
            .all()
        )
        if not decision.is_own(dict(found)):
            await services.audit.record(session, decision, context, [(association_id, ["history"])])
    return [
        {
            "version": r["version"],
            "at": r["at"],
            "action": r["action"],
            "actor_subject": r["actor_subject"],
            "actor_roles": list(r["actor_roles"]),
            "changed_fields": list(r["changed_fields"]),
            "changes": r["changes"],
        }
        for r in rows
    ]


async def associations_of_member(
    *,
    services: Services,
    decision: Decision,
    context: AccessContext,
    member_id: UUID,
) -> list[dict[str, Any]]:
    """The associations a member belongs to (every status), with the link's date and
    basis; out of scope members are "not found". Staff reads show in the member's
    access log."""
    async with services.sessions() as session, session.begin():
        member = (await _members(session, [member_id])).get(member_id)
        if member is None or not decision.permits(member.scope()):
            raise MemberNotFound(str(member_id))
        rows = (
            (
                await session.execute(
                    select(
                        associations.c.id,
                        associations.c.name,
                        associations.c.country,
                        associations.c.city_name,
                        associations.c.embassy_id,
                        associations.c.status,
                        association_members.c.linked_at,
                        association_members.c.basis,
                    )
                    .join(
                        association_members,
                        association_members.c.association_id == associations.c.id,
                    )
                    .where(association_members.c.member_id == member_id)
                    .order_by(association_members.c.linked_at, associations.c.id)
                )
            )
            .mappings()
            .all()
        )
        if not decision.is_own(member.scope()):
            await services.audit.record(
                session, decision, context, [(member_id, ["associations"])], action="list"
            )
    return [
        {
            "association_id": r["id"],
            "name": r["name"],
            "country": r["country"],
            "city": r["city_name"],
            "embassy_id": r["embassy_id"],
            "status": r["status"],
            "linked_at": r["linked_at"],
            "basis": r["basis"],
        }
        for r in rows
    ]


# -- changes -------------------------------------------------------------------------------


def _staff_roles(decision: Decision, record_: Mapping[str, Any]) -> list[str]:
    return sorted(g.role.value for g in decision.reaching(record_) if g.role is not Role.CITIZEN)


async def update_association(
    *,
    services: Services,
    decision: Decision,
    context: AccessContext,
    association_id: UUID,
    changes: Mapping[str, Any],
    if_match: int | None = None,
    dissolve: bool = False,
    reason: str | None = None,
) -> dict[str, Any]:
    """Change an association (``changes`` holds only the fields given), or dissolve it
    (``dissolve``, with an optional reason). A change that changes nothing writes nothing."""
    principal = decision.principal
    async with services.sessions() as session, session.begin():
        before, row = await _lock(session, association_id, decision.where(SCOPE_COLUMNS))
        scope = {k: row[k] for k in ("contact_subject", "contact_member_id")}
        if if_match is not None and if_match != before.version:
            raise VersionMismatch(before.version)
        if before.status == "dissolved":
            raise Dissolved(str(association_id))
        staff = _staff_roles(decision, row)
        after = before
        if "country" in changes:
            country = domain.country(changes["country"])
            after = after.with_changes(
                country=country, embassy_id=services.jurisdictions.embassy_for(country)
            )
            if after.country != before.country and "city" not in changes and before.city:
                after = after.with_changes(city=domain.resolve_city(country, before.city.name))
        if "city" in changes:
            after = after.with_changes(city=domain.resolve_city(after.country, changes["city"]))
        if "name" in changes:
            after = after.with_changes(name=changes["name"])
        if "domains" in changes:
            after = after.with_changes(domains=domain.domains(changes["domains"]))
        if "partnerships" in changes:
            after = after.with_changes(partnerships=list(changes["partnerships"]))
        for simple in ("email", "website"):
            if simple in changes:
                after = after.with_changes(**{simple: changes[simple]})
        new_links: dict[UUID, str] = {}
        if "officers" in changes:
            officers: list[OfficerInput] = list(changes["officers"])
            own = None if staff else await _own_member(session, principal)
            await _check_officers(
                session,
                services=services,
                principal=principal,
                officers=officers,
                staff=bool(staff),
                own=own,
                linked=before.member_ids,
            )
            after = after.with_changes(
                officers=[domain.Officer(o.role, o.name, o.member_id) for o in officers]
            )
            basis = "staff" if staff else "self"
            new_links = {
                o.member_id: basis
                for o in officers
                if o.member_id is not None and o.member_id not in before.member_ids
            }
        if dissolve:
            after = after.with_changes(status="dissolved")
        after_scope = {**scope, "embassy_id": after.embassy_id}
        if after.embassy_id != before.embassy_id and not decision.permits(after_scope):
            # An officer may not move an association out of their jurisdiction.
            raise OutsideJurisdiction(after.country)
        if new_links:
            after = after.with_changes(member_ids=sorted({*before.member_ids, *new_links}))
        if not domain.changes(before, after):
            full = record(before, scope)
            return decision.project(full, ASSOCIATION_FIELDS)
        now = datetime.now(UTC)
        after = after.with_changes(
            version=before.version + 1,
            updated_at=now,
            dissolved_at=now if dissolve else before.dissolved_at,
        )
        values = _row_values(after)
        if dissolve:
            values["dissolution_reason"] = reason
        await session.execute(
            update(associations).where(associations.c.id == association_id).values(**values)
        )
        if new_links:
            await session.execute(
                association_members.insert(),
                [
                    {
                        "association_id": association_id,
                        "member_id": m,
                        "linked_at": now,
                        "linked_by": principal.subject,
                        "basis": basis,
                    }
                    for m, basis in new_links.items()
                ],
            )
        await _write_change(
            session,
            outbox_writer=services.outbox,
            before=before,
            after=after,
            action="dissolved" if dissolve else "updated",
            principal=principal,
            roles=decision.roles,
        )
        full = record(after, scope)
        view = decision.project(full, ASSOCIATION_FIELDS)
        if not decision.is_own(full):
            await services.audit.record(session, decision, context, [(association_id, list(view))])
    return view


async def link_member(
    *,
    services: Services,
    principal: Principal,
    context: AccessContext,
    association_id: UUID,
    member_id: UUID,
) -> bool:
    """Link a member to an association; True when the link is new.

    A person joins themselves (their consent), any active association they can see;
    staff link members within their members' scope to associations they may update
    (the person's consent is theirs to collect, as in assisted registration).
    """
    decision = services.policy.decide(principal, LINK_RESOURCE, "link")
    async with services.sessions() as session, session.begin():
        member = (await _members(session, [member_id])).get(member_id)
        if member is None or not decision.permits(member.scope()):
            raise MemberNotFound(str(member_id))
        own = decision.is_own(member.scope())
        if own:
            scope = Access.of(services.policy, principal, "read").where()
        else:
            scope = _update_scope(services.policy, principal)
        before, _row = await _lock(session, association_id, scope)
        if before.status == "dissolved":
            raise Dissolved(str(association_id))
        if member_id in before.member_ids:
            return False
        now = datetime.now(UTC)
        await session.execute(
            insert(association_members).values(
                association_id=association_id,
                member_id=member_id,
                linked_at=now,
                linked_by=principal.subject,
                basis="self" if own else "staff",
            )
        )
        after = before.with_changes(
            member_ids=sorted([*before.member_ids, member_id]),
            version=before.version + 1,
            updated_at=now,
        )
        await _bump(session, after)
        await _write_change(
            session,
            outbox_writer=services.outbox,
            before=before,
            after=after,
            action="member_linked",
            principal=principal,
            roles=decision.roles,
        )
        if not own:
            await services.audit.record(
                session, decision, context, [(member_id, ["associations"])], action="link"
            )
    return True


def _update_scope(policy: Policy, principal: Principal) -> ColumnElement[bool]:
    try:
        return policy.decide(principal, RESOURCE, "update").where(SCOPE_COLUMNS)
    except Forbidden:
        return false()


async def unlink_member(
    *,
    services: Services,
    principal: Principal,
    context: AccessContext,
    association_id: UUID,
    member_id: UUID,
) -> bool:
    """Remove a member's link (and the officer entries naming them); True when there was
    one. The member themselves, or whoever may update the association."""
    try:
        decision: Decision | None = services.policy.decide(principal, LINK_RESOURCE, "unlink")
    except Forbidden:
        decision = None
    async with services.sessions() as session, session.begin():
        member = (await _members(session, [member_id])).get(member_id)
        own = member is not None and decision is not None and decision.is_own(member.scope())
        if own:
            scope = Access.of(services.policy, principal, "read").where()
        else:
            scope = _update_scope(services.policy, principal)
        before, _row = await _lock(session, association_id, scope)
        if member_id not in before.member_ids and all(
            o.member_id != member_id for o in before.officers
        ):
            return False
        after = await _remove_member(session, before, member_id)
        await _write_change(
            session,
            outbox_writer=services.outbox,
            before=before,
            after=after,
            action="member_unlinked",
            principal=principal,
            roles=sorted(r.value for r in principal.roles),
        )
        if not own and decision is not None and member is not None:
            await services.audit.record(
                session, decision, context, [(member_id, ["associations"])], action="unlink"
            )
    return True


async def _bump(session: AsyncSession, after: domain.Association) -> None:
    await session.execute(
        update(associations)
        .where(associations.c.id == after.id)
        .values(version=after.version, updated_at=after.updated_at)
    )


async def _remove_member(
    session: AsyncSession, before: domain.Association, member_id: UUID
) -> domain.Association:
    now = datetime.now(UTC)
    after = before.with_changes(
        member_ids=[m for m in before.member_ids if m != member_id],
        officers=[o for o in before.officers if o.member_id != member_id],
        version=before.version + 1,
        updated_at=now,
    )
    await session.execute(
        delete(association_members).where(
            association_members.c.association_id == before.id,
            association_members.c.member_id == member_id,
        )
    )
    await session.execute(
        update(associations)
        .where(associations.c.id == before.id)
        .values(
            officers=[o.as_dict() for o in after.officers],
            version=after.version,
            updated_at=after.updated_at,
        )
    )
    return after


# -- erasure and merges (hooks called by the member's erasure and merge) ------------------

ERASER = "registry-erasure"


async def forget_member(
    session: AsyncSession, *, outbox_writer: OutboxWriter, member_id: UUID
) -> list[UUID]:
    """Erase a member from every association, in the erasure's own transaction.

    Their links and the officer entries linked to them go, the association's contact is
    cleared when it was them, earlier history entries lose their name and id, and each
    association's new snapshot (``registry.association.updated``) supersedes the earlier
    ones on the compacted topic; the outbox rows of those associations' earlier events
    (which name the person) are deleted. Returns the associations that changed.
    """
    needle = [{"member_id": str(member_id)}]
    owner = (
        await session.execute(select(members.c.owner_subject).where(members.c.id == member_id))
    ).scalar_one_or_none()
    ids = (
        (
            await session.execute(
                select(associations.c.id)
                .where(
                    or_(
                        associations.c.id.in_(
                            select(association_members.c.association_id).where(
                                association_members.c.member_id == member_id
                            )
                        ),
                        associations.c.officers.contains(needle),
                        associations.c.contact_member_id == member_id,
                    )
                )
                .order_by(associations.c.id)
            )
        )
        .scalars()
        .all()
    )
    system = Principal(subject=ERASER, roles=frozenset({Role.SERVICE}))
    for association_id in ids:
        before, row = await _lock(session, association_id, associations.c.id == association_id)
        after = await _remove_member(session, before, member_id)
        subjects = {s for s in (owner, row["contact_subject"]) if s}
        if row["contact_member_id"] == member_id:
            await session.execute(
                update(associations)
                .where(associations.c.id == association_id)
                .values(contact_subject=None, contact_member_id=None)
            )
        if row["registered_by"] in subjects:
            await session.execute(
                update(associations)
                .where(associations.c.id == association_id)
                .values(registered_by=ERASER)
            )
        await _scrub_history(session, association_id, member_id, subjects)
        # The outbox keeps the bytes of the earlier snapshots, which name the person; the
        # snapshot written below supersedes them (the topic is compacted by association id),
        # so they go, published or not.
        await session.execute(
            delete(outbox).where(
                outbox.c.key == str(association_id),
                outbox.c.event_type.in_(ASSOCIATION_EVENT_TYPES),
            )
        )
        # The entry says which fields changed, never the erased values.
        await _write_change(
            session,
            outbox_writer=outbox_writer,
            before=before,
            after=after,
            action="member_erased",
            principal=system,
            roles=[Role.SERVICE.value],
            record_changes=False,
        )

    if ids:
        log.info("member_erased_from_associations", associations=len(ids))
    return list(ids)


def _scrub(value: Any, member_id: str) -> Any:
    """A history value without the member: officer entries naming them and their id."""
    if isinstance(value, list):
        return [
            _scrub(v, member_id)
            for v in value
            if v != member_id and not (isinstance(v, dict) and v.get("member_id") == member_id)
        ]
    if isinstance(value, dict):
        return {k: _scrub(v, member_id) for k, v in value.items()}
    return value


async def _scrub_history(
    session: AsyncSession, association_id: UUID, member_id: UUID, subjects: set[str]
) -> None:
    rows = (
        await session.execute(
            select(
                association_history.c.id,
                association_history.c.changes,
                association_history.c.actor_subject,
            ).where(association_history.c.association_id == association_id)
        )
    ).all()
    for history_id, changes, actor in rows:
        scrubbed = _scrub(changes, str(member_id))
        values: dict[str, Any] = {}
        if scrubbed != changes:
            values["changes"] = scrubbed
        if actor in subjects:
            values["actor_subject"] = ERASER
        if values:
            await session.execute(
                update(association_history)
                .where(association_history.c.id == history_id)
                .values(**values)
            )


async def move_member(
    session: AsyncSession, *, outbox_writer: OutboxWriter, from_id: UUID, to_id: UUID
) -> list[UUID]:
    """A merge: the links and officer entries of ``from_id`` now name ``to_id`` (in the
    merge's own transaction); each changed association publishes its new snapshot."""
    needle = [{"member_id": str(from_id)}]
    ids = (
        (
            await session.execute(
                select(associations.c.id)
                .where(
                    or_(
                        associations.c.id.in_(
                            select(association_members.c.association_id).where(
                                association_members.c.member_id == from_id
                            )
                        ),
                        associations.c.officers.contains(needle),
                        associations.c.contact_member_id == from_id,
                    )
                )
                .order_by(associations.c.id)
            )
        )
        .scalars()
        .all()
    )
    system = Principal(subject="registry-merge", roles=frozenset({Role.SERVICE}))
    for association_id in ids:
        before, row = await _lock(session, association_id, associations.c.id == association_id)
        now = datetime.now(UTC)
        officers = [
            domain.Officer(o.role, o.name, to_id if o.member_id == from_id else o.member_id)
            for o in before.officers
        ]
        after = before.with_changes(
            officers=officers,
            member_ids=sorted({to_id if m == from_id else m for m in before.member_ids}),
            version=before.version + 1,
            updated_at=now,
        )
        link = (
            (
                await session.execute(
                    select(association_members).where(
                        association_members.c.association_id == association_id,
                        association_members.c.member_id == from_id,
                    )
                )
            )
            .mappings()
            .first()
        )
        await session.execute(
            delete(association_members).where(
                association_members.c.association_id == association_id,
                association_members.c.member_id == from_id,
            )
        )
        if link is not None:
            await session.execute(
                insert(association_members)
                .values(
                    association_id=association_id,
                    member_id=to_id,
                    linked_at=link["linked_at"],
                    linked_by=link["linked_by"],
                    basis=link["basis"],
                )
                .on_conflict_do_nothing()
            )
        values: dict[str, Any] = {
            "officers": [o.as_dict() for o in officers],
            "version": after.version,
            "updated_at": now,
        }
        if row["contact_member_id"] == from_id:
            values["contact_member_id"] = to_id
        await session.execute(
            update(associations).where(associations.c.id == association_id).values(**values)
        )
        await _write_change(
            session,
            outbox_writer=outbox_writer,
            before=before,
            after=after,
            action="member_merged",
            principal=system,
            roles=[Role.SERVICE.value],
        )
    return list(ids)


async def reconcile_association_embassies(
    sessions: async_sessionmaker[AsyncSession], jurisdictions: Jurisdictions
) -> int:
    """Re-derive each association's embassy from the jurisdictions (the file may change)."""
    derived = jurisdictions.sql_embassy_of(associations.c.country)
    async with sessions() as session, session.begin():
        result = await session.execute(
            update(associations)
            .where(associations.c.embassy_id != derived)
            .values(embassy_id=derived)
        )
    changed = int(getattr(result, "rowcount", 0) or 0)
    if changed:
        log.info("association_embassies_reassigned", associations=changed)
    return changed
