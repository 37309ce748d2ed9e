"""Registering a person: one transaction (or one statement) with its events and audit."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import uuid_utils.compat as uuid_compat
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from diaspora_events.outbox import OutboxWriter
from diaspora_identity.audit import AccessContext, AuditTrail
from diaspora_identity.jurisdictions import Jurisdictions
from diaspora_identity.policy import Decision
from diaspora_identity.principal import Role
from registry.crypto import DocumentCipher
from registry.duplicates.detection import flag_new_members, likely_duplicates, new_member
from registry.duplicates.normalise import email_key, name_key
from registry.members.access import Actor
from registry.members.columns import registration_columns
from registry.members.domain import Member, RegisterMember
from registry.members.errors import (
    AlreadyRegistered,
    ConsentNotRecorded,
    IdempotencyConflict,
    InvalidChange,
    OutsideJurisdiction,
)
from registry.members.events import registered_event
from registry.members.one_statement import register_in_one_statement
from registry.members.records import (
    MEMBER_FIELDS,
    UPDATABLE_FIELDS,
    consents_of,
    documents_of,
    history_value,
    jsonable,
    record_change,
    view_of,
    write_documents,
)
from registry.members.tables import member_consents, members


def _digest(command: RegisterMember, caller: str) -> str:
    body = {k: v for k, v in asdict(command).items() if k != "idempotency_key"}
    # The caller is part of the request: another caller reusing a key gets a conflict,
    # never someone else's member.
    body["_caller"] = caller
    return hashlib.sha256(json.dumps(jsonable(body), sort_keys=True).encode()).hexdigest()


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
    duplicate_threshold: float,
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
                sessions,
                outbox,
                columns,
                consents,
                actor,
                consent_method,
                context,
                duplicate_threshold,
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
            await flag_new_members(
                session, outbox, [columns], source="registration", threshold=duplicate_threshold
            )
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
    duplicate_threshold: float,
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
        if await likely_duplicates(autocommit, member, threshold=duplicate_threshold):
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
