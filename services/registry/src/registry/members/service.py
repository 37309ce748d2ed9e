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
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from diaspora_events.contracts import (
    MemberConfirmedV1,
    MemberRegisteredV1,
    MemberUpdatedV1,
    RegistryAuditRecordedV1,
)
from diaspora_events.outbox import OutboxWriter
from diaspora_identity.audit import AccessContext, AuditTrail, audit_event_factory
from diaspora_identity.jurisdictions import Jurisdictions
from diaspora_identity.policy import Decision
from diaspora_identity.principal import Role
from registry.crypto import DocumentCipher
from registry.duplicates.detection import (
    MATCH_KEY_FIELDS,
    flag_new_members,
    likely_duplicates,
    new_member,
    refresh_match_keys,
)
from registry.duplicates.normalise import email_key, name_key
from registry.duplicates.tables import member_match_keys
from registry.members.domain import Member, RegisterMember, UpdateMember
from registry.members.one_statement import register_in_one_statement
from registry.members.records import (
    MEMBER_FIELDS,
    PROFILE_FIELDS,
    REQUIRED_FIELDS,
    UPDATABLE_FIELDS,
    consents_of,
    documents_of,
    history_value,
    jsonable,
    profile_columns,
    profile_of,
    record_change,
    view_of,
    write_documents,
)
from registry.members.tables import member_changes, member_consents, members

log = structlog.get_logger(__name__)

__all__ = ["MEMBER_FIELDS", "UPDATABLE_FIELDS"]

# The policy's scope attributes, as columns of the members table.
SCOPE_COLUMNS = {
    "id": members.c.id,
    "owner_subject": members.c.owner_subject,
    "embassy_id": members.c.embassy_id,
}
ACCESS_LOG_SCOPE_COLUMNS = {"owner_subject": members.c.owner_subject, "member_id": members.c.id}


class MemberNotFound(Exception):
    """No member with this id within the caller's scope."""


class VersionMismatch(Exception):
    """If-Match named another version of the record than the current one."""

    def __init__(self, current: int) -> None:
        super().__init__(f"current version is {current}")
        self.current = current


class ConsentNotRecorded(Exception):
    """Staff filed a registration without attesting how the person consented."""


class InvalidChange(ValueError):
    """A change the profile cannot take (e.g. clearing a required field, an unknown city)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before for a different request."""


class AlreadyRegistered(Exception):
    """The caller's identity is already linked to a member."""

    def __init__(self, member_id: UUID) -> None:
        super().__init__(str(member_id))
        self.member_id = member_id


class OutsideJurisdiction(Exception):
    """A staff member tried to register someone their grant does not reach (an officer:
    someone living outside their embassies' jurisdiction). Never a self-registration."""


# The event published for each entry (its fields are the entry's).
audit_event = audit_event_factory(RegistryAuditRecordedV1)


def _digest(command: RegisterMember, caller: str) -> str:
    body = {k: v for k, v in asdict(command).items() if k != "idempotency_key"}
    # The caller is part of the request: another caller reusing a key gets a conflict,
    # never someone else's member.
    body["_caller"] = caller
    return hashlib.sha256(json.dumps(jsonable(body), sort_keys=True).encode()).hexdigest()


def _member(row: Any) -> Member:
    return Member(**{f: getattr(row, f) for f in Member.__dataclass_fields__})


def registered_event(
    member: Member | Mapping[Any, Any], consents: Sequence[Mapping[Any, Any]] = ()
) -> MemberRegisteredV1:
    """The registration event: the first release's flat fields and the whole profile."""
    row: Mapping[Any, Any] = asdict(member) if isinstance(member, Member) else member
    return MemberRegisteredV1(
        member_id=row["id"],
        given_name=row["given_name"],
        family_name=row["family_name"],
        date_of_birth=row["date_of_birth"],
        email=row["email"],
        phone=row["phone"],
        country_of_residence=row["country_of_residence"],
        preferred_language=row["preferred_language"],
        registered_at=row["registered_at"],
        profile=profile_of(row, consents),
    )


@dataclass(frozen=True)
class Actor:
    """Who acts on a record: the person themselves, or staff with the role that reaches it."""

    role: str
    subject: str | None  # staff only: the person is "the person", not an identifier
    is_person: bool


def actor_for(decision: Decision, record: Mapping[Any, Any]) -> Actor:
    if decision.is_own(record):
        return Actor(Role.CITIZEN.value, None, True)
    reaching = [g for g in decision.reaching(record) if g.role is not Role.CITIZEN]
    role = reaching[0].role.value if reaching else decision.roles[0]
    return Actor(role, decision.principal.subject, False)


def _city_columns(
    changes: Mapping[Any, Any], *, country: str, field: str = "city"
) -> dict[str, Any]:
    try:
        return profile_columns(changes, country=country)
    except ValueError as error:
        raise InvalidChange(field, str(error)) from None


# The optional parts of a registration, in the order they become members columns.
OPTIONAL_PARTS = (
    "sex",
    "place_of_birth",
    "postal_address",
    "city",
    "arrival_year",
    "residence_status",
    "languages",
    "occupations",
    "skills",
    "education",
    "experience",
    "availability",
)


def registration_columns(
    command: RegisterMember,
    *,
    member_id: UUID,
    embassy_id: str,
    owner_subject: str | None,
    registered_by: str | None,
    by_role: str | None,
    consent_method: str,
    consent_reference: str | None,
    digest: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The members row of a registration (one registration, or each row of a bulk import)."""
    profile = {name: getattr(command, name) for name in OPTIONAL_PARTS}
    return {
        "id": member_id,
        "given_name": command.given_name,
        "family_name": command.family_name,
        "date_of_birth": command.date_of_birth,
        "country_of_residence": command.country_of_residence,
        "email": command.email,
        "phone": command.phone,
        "preferred_language": command.preferred_language,
        "registered_at": now,
        "embassy_id": embassy_id,
        "owner_subject": owner_subject,
        "registered_by": registered_by,
        "registered_by_role": by_role,
        **_city_columns(profile, country=command.country_of_residence),
        "registration_consent_method": consent_method,
        "registration_consent_reference": consent_reference,
        "last_confirmed_at": now,
        "updated_at": now,
        "version": 1,
        "idempotency_key": command.idempotency_key,
        "request_digest": digest,
    }


async def register_member(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    audit: AuditTrail,
    jurisdictions: Jurisdictions,
    decision: Decision,
    context: AccessContext,
    command: RegisterMember,
    cipher: DocumentCipher | None = None,
) -> tuple[dict[str, Any], bool]:
    """Register a person; returns the member's record (every field of MEMBER_FIELDS and
    ``owner_subject``, for the policy's field rules) and whether it was created now.

    Staff (an officer within the jurisdiction, an admin) file it for the person
    (assisted registration, audited), attesting how the person consented; a citizen
    registers themselves and their token's subject is linked to the member. A
    repeated request with the same Idempotency-Key returns the first result.
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
        if command.consent_recorded is None:
            raise ConsentNotRecorded()
        consent_method: str = command.consent_recorded.method
        consent_reference = command.consent_recorded.reference
    elif principal.roles - {Role.CITIZEN}:
        # A staff token whose grant does not reach this registration is refused: it never
        # becomes a self-registration owned by the staff account (issue 15).
        raise OutsideJurisdiction(command.country_of_residence)
    elif Role.CITIZEN in principal.roles and decision.permits(
        {"id": member_id, "owner_subject": principal.subject}
    ):
        owner_subject, registered_by, by_role = principal.subject, None, None
        consent_method, consent_reference = "self_service", None
    else:
        raise OutsideJurisdiction(command.country_of_residence)
    if command.documents and cipher is None:
        raise RuntimeError("document numbers need the registry's DocumentCipher")

    # The digest only serves to compare a repeated Idempotency-Key's request with the first.
    digest = _digest(command, principal.subject) if command.idempotency_key else None
    if command.idempotency_key:
        existing = await _by_idempotency_key(sessions, command.idempotency_key, digest)
        if existing is not None:
            return await _record(sessions, existing.id, cipher=cipher), False
    # A person already registered is not looked up first: the members table's unique
    # owner_subject refuses the insert, answered below (one transaction per registration).

    now = datetime.now(UTC)
    try:
        columns = registration_columns(
            command,
            member_id=member_id,
            embassy_id=embassy_id,
            owner_subject=owner_subject,
            registered_by=registered_by,
            by_role=by_role,
            consent_method=consent_method,
            consent_reference=consent_reference,
            digest=digest,
            now=now,
        )
    except InvalidChange:
        # Someone registered already hears that first, as when they were looked up first.
        if owner_subject is not None:
            linked = await _by_owner(sessions, owner_subject)
            if linked is not None:
                raise AlreadyRegistered(linked.id) from None
        raise
    actor = Actor(by_role or Role.CITIZEN.value, registered_by, owner_subject is not None)
    # A new member's consents are the ones given now, one per purpose, in purpose order
    # (what consents_of reads back); the record and the event are built from what is
    # written, without reading it back.
    consents = [
        {
            "member_id": member_id,
            "purpose": purpose,
            "granted": granted,
            "at": now,
            "method": consent_method,
            "actor_role": actor.role,
            "actor_subject": actor.subject,
        }
        for purpose, granted in sorted(command.consents.items())
    ]
    try:
        if owner_subject is not None and not command.documents:
            # Self-registration: one statement when no likely duplicate is found.
            record = await _register_in_one_statement(
                sessions, outbox, columns, consents, actor, consent_method, context
            )
            if record is not None:
                return record, True
        async with sessions() as session, session.begin():
            # (insert() with the values as parameters: compiled once, not rebuilt each time)
            await session.execute(members.insert(), columns)
            documents: list[Mapping[Any, Any]] = []
            if command.documents:
                assert cipher is not None
                await write_documents(session, cipher, member_id, command.documents)
                documents = (await documents_of(session, [member_id]))[member_id]
            if consents:
                await session.execute(member_consents.insert(), consents)
            record = view_of(columns, documents, consents, cipher=None)
            record["owner_subject"] = owner_subject
            given = given_at_registration(record)
            await record_change(
                session,
                member_id=member_id,
                action="registered",
                actor_role=actor.role,
                actor_subject=actor.subject,
                fields=given,
                old={},
                new=record,
                version=1,
                request_id=context.request_id,
                at=now,
            )
            await outbox.add(session, registered_event(columns, consents), subject=str(member_id))
            # Likely duplicates go to the officers' review queue; the registration stands.
            await flag_new_members(session, outbox, [columns], source="registration")
            if owner_subject is None:
                await audit.record(session, decision, context, [(member_id, MEMBER_FIELDS)])
    except IntegrityError:
        # The person is registered already, or two requests with one Idempotency-Key
        # (or one person) raced and the other one won.
        if command.idempotency_key:
            existing = await _by_idempotency_key(sessions, command.idempotency_key, digest)
            if existing is not None:
                return await _record(sessions, existing.id, cipher=cipher), False
        if owner_subject is not None:
            linked = await _by_owner(sessions, owner_subject)
            if linked is not None:
                raise AlreadyRegistered(linked.id) from None
        raise
    return record, True


# What a registration can fill in (the history's "registered" line lists those given).
GIVEN_AT_REGISTRATION = frozenset(UPDATABLE_FIELDS) | {"consents", "registration_consent"}
_GIVEN_IN_ORDER = tuple(f for f in MEMBER_FIELDS if f in GIVEN_AT_REGISTRATION)


def given_at_registration(record: Mapping[str, Any]) -> list[str]:
    """The fields a registration filled in, in the record's order: those its history's
    "registered" line names (``record``: the record view)."""
    return [f for f in _GIVEN_IN_ORDER if record.get(f)]


async def _register_in_one_statement(
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    columns: Mapping[str, Any],
    consents: Sequence[Mapping[str, Any]],
    actor: Actor,
    consent_method: str,
    context: AccessContext,
) -> dict[str, Any] | None:
    """The registration written by one statement (:mod:`registry.members.one_statement`), unless
    a likely duplicate is found first: then None, and the caller takes the transaction
    (which opens the review case). The connection is the sessions' engine's, in
    autocommit mode: the statement is its own transaction."""
    member = new_member(columns)
    engine: AsyncEngine | None = sessions.kw.get("bind")
    if engine is None:  # sessions bound per use: the transaction does it all
        return None
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        if await likely_duplicates(autocommit, member):
            return None
        record = view_of(columns, (), consents, cipher=None)
        given = given_at_registration(record)
        # Its data key first (its own statement: a key without a member is harmless).
        event = registered_event(columns, consents)
        await register_in_one_statement(
            autocommit,
            outbox=outbox,
            columns=columns,
            consents=consents,
            actor_role=actor.role,
            actor_subject=actor.subject,
            consent_method=consent_method,
            history_fields=given,
            history_values={f: history_value(f, record) for f in given},
            request_id=context.request_id,
            name_key=name_key(member.given_name, member.family_name),
            email_key=email_key(member.email),
            event_row=outbox.row(
                event,
                subject=str(columns["id"]),
                data_keys=await outbox.data_keys(None, [event]),
            ),
        )
    record["owner_subject"] = columns["owner_subject"]
    return record


async def _full_view(
    session: AsyncSession,
    row: Mapping[Any, Any],
    *,
    cipher: DocumentCipher | None,
    with_numbers: bool = False,
) -> dict[str, Any]:
    documents = (await documents_of(session, [row["id"]]))[row["id"]]
    consents = (await consents_of(session, [row["id"]]))[row["id"]]
    return view_of(row, documents, consents, cipher=cipher, with_numbers=with_numbers)


async def _record(
    sessions: async_sessionmaker[AsyncSession],
    member_id: UUID,
    *,
    cipher: DocumentCipher | None,
) -> dict[str, Any]:
    async with sessions() as session:
        row = (await session.execute(select(members).where(members.c.id == member_id))).one()
        record = await _full_view(session, row._mapping, cipher=cipher)
    record["owner_subject"] = row.owner_subject
    return record


async def _by_idempotency_key(
    sessions: async_sessionmaker[AsyncSession], key: str, digest: str | None
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
    # A given set of members (search: the page of ids the search read model found).
    member_ids: Sequence[UUID] | None = None
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
    if q.member_ids is not None:
        query = query.where(members.c.id.in_(q.member_ids))
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
    documents_decision: Decision | None = None,
    cipher: DocumentCipher | None = None,
) -> list[dict[str, Any]]:
    """The members the caller may see matching ``query``, each with the fields they may see.

    The one read path of get, list, search and export: scope in SQL, field rules
    per row, and an audit entry per record received by anyone but the person.
    Document numbers are decrypted only for records ``documents_decision`` (the
    policy's ``member_document`` read) reaches: by default, the person's own.
    """
    statement = _apply(select(members).where(decision.where(SCOPE_COLUMNS)), query).order_by(
        members.c.id
    )
    if query.offset:
        statement = statement.offset(query.offset)
    if query.limit is not None:
        statement = statement.limit(query.limit)
    async with sessions() as session, session.begin():
        rows: Sequence[Mapping[Any, Any]] = (await session.execute(statement)).mappings().all()
        ids = [row["id"] for row in rows]
        documents = await documents_of(session, ids)
        consents = await consents_of(session, ids)
        views = []
        for row in rows:
            numbers = (
                cipher is not None
                and documents_decision is not None
                and documents_decision.permits(row)
            )
            full = view_of(
                row, documents[row["id"]], consents[row["id"]], cipher=cipher, with_numbers=numbers
            )
            # The scope attributes (owner_subject) decide which field rules reach the row.
            views.append(decision.project({**row, **full}, MEMBER_FIELDS))
        accesses = [
            (row["id"], list(view))
            for row, view in zip(rows, views, strict=True)
            if view and not decision.is_own(row)
        ]
        await audit.record(session, decision, context, accesses)
    return views


async def locked_member(
    session: AsyncSession, decision: Decision, member_id: UUID
) -> Mapping[Any, Any]:
    """The member's row, locked for this transaction, if the decision reaches it."""
    row = (
        await session.execute(
            select(members)
            .where(members.c.id == member_id, decision.where(SCOPE_COLUMNS))
            .with_for_update()
        )
    ).first()
    if row is None:
        raise MemberNotFound(str(member_id))
    return row._mapping


def check_version(row: Mapping[Any, Any], expected: int | None) -> None:
    if expected is not None and row["version"] != expected:
        raise VersionMismatch(row["version"])


async def bump(
    session: AsyncSession, member_id: UUID, values: Mapping[Any, Any], now: datetime
) -> Mapping[Any, Any]:
    """Write ``values``, move the version on; returns the new row."""
    result = await session.execute(
        update(members)
        .where(members.c.id == member_id)
        .values(**values, updated_at=now, version=members.c.version + 1)
        .returning(*members.c)
    )
    return result.one()._mapping


def returned(record: Mapping[str, Any]) -> list[str]:
    """The fields of a member's record an answer carries (what its audit entry names)."""
    return [f for f in MEMBER_FIELDS if f in record]


async def update_member(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    audit: AuditTrail,
    jurisdictions: Jurisdictions,
    cipher: DocumentCipher,
    decision: Decision,
    context: AccessContext,
    command: UpdateMember,
) -> tuple[dict[str, Any], list[str]]:
    """Change fields of a member's profile: the person (self-service) or staff within scope
    (correction, audited). Returns the record as it now stands and the fields that changed.

    Every change leaves a line in the history (who, when, old and new values) and a
    ``registry.member.updated`` event with the whole profile, in one transaction. A change
    of country re-derives the embassy; a city is looked up in the (new) country, and a
    change of country without a city clears the city. Nothing changed: no version, no event.
    """
    unknown = set(command.changes) - set(UPDATABLE_FIELDS)
    if unknown:
        raise InvalidChange(sorted(unknown)[0], "this field cannot be changed")
    for name, value in command.changes.items():
        if name in REQUIRED_FIELDS and value is None:
            raise InvalidChange(name, "this field is required and cannot be cleared")
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        row = await locked_member(session, decision, command.member_id)
        check_version(row, command.expected_version)
        actor = actor_for(decision, row)
        documents = (await documents_of(session, [row["id"]]))[row["id"]]
        consents = (await consents_of(session, [row["id"]]))[row["id"]]
        before = view_of(row, documents, consents, cipher=cipher, with_numbers=True)

        changes = dict(command.changes)
        country = changes.get("country_of_residence") or row["country_of_residence"]
        if country != row["country_of_residence"] and "city" not in changes:
            changes["city"] = None
        values = _city_columns(
            {k: v for k, v in changes.items() if k != "documents"}, country=country
        )
        if "country_of_residence" in changes:
            values["embassy_id"] = jurisdictions.embassy_for(country)
        candidate = view_of(
            {**row, **values},
            [
                {
                    "member_id": row["id"],
                    "kind": d.kind,
                    "issuing_country": d.issuing_country,
                    "expires_on": d.expires_on,
                }
                for d in changes["documents"]
            ]
            if "documents" in changes
            else documents,
            consents,
        )
        if "documents" in changes:
            for view, document in zip(candidate["documents"], changes["documents"], strict=True):
                view["number"] = document.number
        else:
            candidate["documents"] = before["documents"]
        changed = [
            f
            for f in MEMBER_FIELDS
            if f in (*UPDATABLE_FIELDS, "embassy_id")
            and jsonable(before[f]) != jsonable(candidate[f])
        ]
        if not changed:
            unchanged = view_of(row, documents, consents)
            if not actor.is_person:
                # Nothing changed, but the whole record goes back: staff read it (issue 15).
                await audit.record(
                    session, decision, context, [(row["id"], returned(unchanged))], action="read"
                )
            return unchanged, []
        after_row = await bump(session, row["id"], values, now)
        if MATCH_KEY_FIELDS.intersection(changed):
            await refresh_match_keys(session, after_row)
        if "documents" in changed:
            await write_documents(session, cipher, row["id"], changes["documents"])
        after = view_of(after_row, (await documents_of(session, [row["id"]]))[row["id"]], consents)
        await record_change(
            session,
            member_id=row["id"],
            action="updated",
            actor_role=actor.role,
            actor_subject=actor.subject,
            fields=changed,
            old=before,
            new=candidate,
            version=after_row["version"],
            request_id=context.request_id,
            at=now,
        )
        profile_changes = [f for f in changed if f in PROFILE_FIELDS]
        if profile_changes:
            await outbox.add(
                session,
                MemberUpdatedV1(
                    member_id=row["id"],
                    updated_at=now,
                    changed_fields=profile_changes,
                    profile=profile_of(after_row, consents),
                ),
                subject=str(row["id"]),
            )
        if not actor.is_person:
            await audit.record(session, decision, context, [(row["id"], changed)])
    return after, changed


async def confirm_member(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    audit: AuditTrail,
    decision: Decision,
    context: AccessContext,
    member_id: UUID,
    expected_version: int | None = None,
) -> dict[str, Any]:
    """The person confirms their profile is still true (or staff record that they did,
    in their presence): ``last_confirmed_at`` is now, ``registry.member.confirmed`` goes out."""
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        row = await locked_member(session, decision, member_id)
        check_version(row, expected_version)
        actor = actor_for(decision, row)
        after_row = await bump(session, member_id, {"last_confirmed_at": now}, now)
        documents = (await documents_of(session, [member_id]))[member_id]
        consents = (await consents_of(session, [member_id]))[member_id]
        await record_change(
            session,
            member_id=member_id,
            action="confirmed",
            actor_role=actor.role,
            actor_subject=actor.subject,
            fields=["last_confirmed_at"],
            old={"last_confirmed_at": row["last_confirmed_at"]},
            new={"last_confirmed_at": now},
            version=after_row["version"],
            request_id=context.request_id,
            at=now,
        )
        await outbox.add(
            session,
            MemberConfirmedV1(
                member_id=member_id, confirmed_at=now, profile=profile_of(after_row, consents)
            ),
            subject=str(member_id),
        )
        if not actor.is_person:
            await audit.record(session, decision, context, [(member_id, ["last_confirmed_at"])])
    return view_of(after_row, documents, consents)


HISTORY_FIELDS = (
    "changed_at",
    "action",
    "actor_role",
    "actor_subject",
    "fields",
    "old_values",
    "new_values",
    "version",
)


async def member_history(
    *,
    sessions: async_sessionmaker[AsyncSession],
    audit: AuditTrail,
    decision: Decision,
    context: AccessContext,
    member_id: UUID,
    before_id: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The member's history, newest first; staff reads are audited."""
    async with sessions() as session, session.begin():
        row = (
            await session.execute(
                select(members.c.id, members.c.owner_subject, members.c.embassy_id).where(
                    members.c.id == member_id, decision.where(SCOPE_COLUMNS)
                )
            )
        ).first()
        if row is None:
            raise MemberNotFound(str(member_id))
        statement = (
            select(member_changes.c.id, *(member_changes.c[f] for f in HISTORY_FIELDS))
            .where(member_changes.c.member_id == member_id)
            .order_by(member_changes.c.id.desc())
            .limit(limit)
        )
        if before_id is not None:
            statement = statement.where(member_changes.c.id < before_id)
        entries = [dict(r) for r in (await session.execute(statement)).mappings().all()]
        if not decision.is_own(dict(row._mapping)):
            await audit.record(session, decision, context, [(member_id, ["history"])])
    return entries


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


async def reconcile_embassies(
    sessions: async_sessionmaker[AsyncSession], jurisdictions: Jurisdictions
) -> int:
    """Re-derive each member's embassy from the jurisdictions (the file may have changed)."""
    derived = jurisdictions.sql_embassy_of(members.c.country_of_residence)
    async with sessions() as session, session.begin():
        result = await session.execute(
            update(members).where(members.c.embassy_id != derived).values(embassy_id=derived)
        )
        # The match keys carry the embassy too (whose officers review a duplicate case).
        await session.execute(
            update(member_match_keys)
            .where(
                member_match_keys.c.member_id == members.c.id,
                member_match_keys.c.embassy_id != members.c.embassy_id,
            )
            .values(embassy_id=members.c.embassy_id)
        )
    changed = int(getattr(result, "rowcount", 0) or 0)
    if changed:
        log.info("member_embassies_reassigned", members=changed)
    return changed
