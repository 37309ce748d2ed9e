"""Identity verification use cases: record a check, read the checks, and the erasure and
merge steps of the checks (composed by :mod:`registry.bootstrap`).

Recording a check is one transaction: the check (document number sealed), the record's
summary column and version, a history line, ``registry.member.identity-verified`` with
the whole snapshot through the outbox, and the audit entry of the officer's change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog
import uuid_utils.compat as uuid_compat
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.contracts import MemberIdentityVerifiedV1
from diaspora_events.outbox import OutboxWriter
from diaspora_identity.audit import AccessContext, AuditTrail
from diaspora_identity.policy import Decision
from registry.crypto import DocumentCipher, Sealed, UndecryptableDocument
from registry.identity.domain import Evidence, check_evidence
from registry.identity.tables import identity_verifications
from registry.members.access import SCOPE_COLUMNS, actor_for, bump, check_version, locked_member
from registry.members.errors import MemberNotFound
from registry.members.identity_level import current_identity, summary_of
from registry.members.records import consents_of, profile_of, record_change
from registry.members.tables import members
from registry.resources import MergeStep

log = structlog.get_logger(__name__)

_t = identity_verifications.c


class IdempotencyConflict(Exception):
    """The caller used this Idempotency-Key before for another request."""


def _digest(member_id: UUID, evidence: Evidence) -> str:
    body = {**asdict(evidence), "member_id": member_id}
    text = json.dumps(body, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def number_context(member_id: UUID, verification_id: UUID) -> dict[str, Any]:
    """The associated data of a check's document number: the member and the row, so a
    ciphertext copied to another row or member does not open."""
    return {"member_id": member_id, "kind": f"identity-verification/{verification_id}"}


def open_number(cipher: DocumentCipher, row: Mapping[Any, Any]) -> str | None:
    try:
        return cipher.open(
            Sealed(row["key_id"], row["number_ciphertext"]),
            **number_context(row["member_id"], row["id"]),
        )
    except UndecryptableDocument as error:
        # Never the number, nor anything of the person: the row and the key.
        log.error("identity_document_undecryptable", key_id=row["key_id"], error=str(error))
        return None


def _summary_row(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "level": row["level"],
        "method": row["method"],
        "document_type": row["document_type"],
        "verified_at": row["verified_at"],
        "embassy_id": row["embassy_id"],
        "expires_on": row["document_expires_on"],
    }


async def _summary(session: AsyncSession, member_id: UUID) -> dict[str, Any] | None:
    rows = await session.execute(select(identity_verifications).where(_t.member_id == member_id))
    return summary_of(_summary_row(r) for r in rows.mappings())


def verification_view(
    row: Mapping[Any, Any], cipher: DocumentCipher | None, *, with_number: bool
) -> dict[str, Any]:
    """One check as shown; the document number only when asked (the person's own)."""
    return {
        "id": row["id"],
        "level": row["level"],
        "method": row["method"],
        "document_type": row["document_type"],
        "document_number": (
            open_number(cipher, row) if with_number and cipher is not None else None
        ),
        "document_expires_on": row["document_expires_on"],
        "seen_on": row["seen_on"],
        "note": row["note"],
        "embassy_id": row["embassy_id"],
        "verified_by": row["verified_by"],
        "verified_by_role": row["verified_by_role"],
        "verified_at": row["verified_at"],
    }


async def record_verification(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    audit: AuditTrail,
    cipher: DocumentCipher,
    decision: Decision,
    context: AccessContext,
    member_id: UUID,
    evidence: Evidence,
    expected_version: int | None = None,
    idempotency_key: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any], int, bool]:
    """Record an officer's check of the member's identity; returns the check (without
    its number), the record's identity level after it, the record's version, and
    whether the check was recorded now (False: a repeated request with the same
    Idempotency-Key, answered with the first check and the record as it stands).

    Raises ``InvalidEvidence`` (before anything is read), ``MemberNotFound`` outside the
    caller's scope, ``IdempotencyConflict`` when the caller used the key for another
    request, ``VersionMismatch`` when If-Match named another version.
    """
    now = datetime.now(UTC)
    check_evidence(evidence, now.date())
    digest = _digest(member_id, evidence) if idempotency_key else None
    try:
        return await _record(
            sessions=sessions,
            outbox=outbox,
            audit=audit,
            cipher=cipher,
            decision=decision,
            context=context,
            member_id=member_id,
            evidence=evidence,
            expected_version=expected_version,
            idempotency_key=idempotency_key,
            digest=digest,
            now=now,
        )
    except IntegrityError:
        # The same key raced for two members (each request locked only its own record).
        if idempotency_key:
            raise IdempotencyConflict(idempotency_key) from None
        raise


async def _record(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    audit: AuditTrail,
    cipher: DocumentCipher,
    decision: Decision,
    context: AccessContext,
    member_id: UUID,
    evidence: Evidence,
    expected_version: int | None,
    idempotency_key: str | None,
    digest: str | None,
    now: datetime,
) -> tuple[dict[str, Any], dict[str, Any], int, bool]:
    async with sessions() as session, session.begin():
        row = await locked_member(session, decision, member_id)
        if idempotency_key:
            # Looked up under the member's lock: a repeat waits for the first to commit.
            first = (
                (
                    await session.execute(
                        select(identity_verifications).where(
                            _t.verified_by == decision.principal.subject,
                            _t.idempotency_key == idempotency_key,
                        )
                    )
                )
                .mappings()
                .first()
            )
            if first is not None:
                if first["request_digest"] != digest:
                    raise IdempotencyConflict(idempotency_key)
                level = current_identity(row["identity_checks"], now.date())
                assert level is not None  # the first check is still valid: same dates
                view = verification_view(first, None, with_number=False)
                return view, level, row["version"], False
        check_version(row, expected_version)
        actor = actor_for(decision, row)
        before = current_identity(row["identity_checks"], now.date())
        verification_id = uuid_compat.uuid7()
        sealed = cipher.seal(evidence.document_number, **number_context(member_id, verification_id))
        values = {
            "id": verification_id,
            "member_id": member_id,
            "level": evidence.level,
            "method": evidence.method,
            "document_type": evidence.document_type,
            "key_id": sealed.key_id,
            "number_ciphertext": sealed.ciphertext,
            "document_expires_on": evidence.document_expires_on,
            "seen_on": evidence.seen_on,
            "note": evidence.note,
            "embassy_id": row["embassy_id"],
            "verified_by": decision.principal.subject,
            "verified_by_role": actor.role,
            "verified_at": now,
            "idempotency_key": idempotency_key,
            "request_digest": digest,
        }
        await session.execute(identity_verifications.insert().values(**values))
        summary = await _summary(session, member_id)
        after_row = await bump(session, member_id, {"identity_checks": summary}, now)
        after = current_identity(summary, now.date())
        assert after is not None  # the check just recorded is valid today
        await record_change(
            session,
            member_id=member_id,
            action="identity_verified",
            actor_role=actor.role,
            actor_subject=actor.subject,
            fields=["identity"],
            old={"identity": before},
            new={"identity": after},
            version=after_row["version"],
            request_id=context.request_id,
            at=now,
        )
        consents = (await consents_of(session, [member_id]))[member_id]
        await outbox.add(
            session,
            MemberIdentityVerifiedV1(
                member_id=member_id,
                verified_at=now,
                level=after["level"],
                profile=profile_of(after_row, consents),
            ),
            subject=str(member_id),
        )
        if not actor.is_person:
            await audit.record(session, decision, context, [(member_id, ["identity"])])
    return verification_view(values, None, with_number=False), after, after_row["version"], True


async def verification_history(
    *,
    sessions: async_sessionmaker[AsyncSession],
    audit: AuditTrail,
    cipher: DocumentCipher,
    decision: Decision,
    documents_decision: Decision | None,
    context: AccessContext,
    member_id: UUID,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Every check recorded for the member, newest first, and the level today. Document
    numbers only where ``documents_decision`` (``member_document`` read) reaches the
    record: the person's own. Staff reads are audited."""
    async with sessions() as session, session.begin():
        row = (
            await session.execute(
                select(
                    members.c.id,
                    members.c.owner_subject,
                    members.c.embassy_id,
                    members.c.identity_checks,
                ).where(members.c.id == member_id, decision.where(SCOPE_COLUMNS))
            )
        ).first()
        if row is None:
            raise MemberNotFound(str(member_id))
        record = dict(row._mapping)
        numbers = documents_decision is not None and documents_decision.permits(record)
        rows = await session.execute(
            select(identity_verifications)
            .where(_t.member_id == member_id)
            .order_by(_t.verified_at.desc(), _t.id.desc())
        )
        items = [verification_view(r, cipher, with_number=numbers) for r in rows.mappings()]
        if not decision.is_own(record):
            await audit.record(
                session, decision, context, [(member_id, ["identity_verifications"])]
            )
    return items, current_identity(record["identity_checks"], datetime.now(UTC).date())


async def forget_verifications(session: AsyncSession, member_id: UUID) -> None:
    """Erasure step: the person's checks go (their sealed numbers with them)."""
    await session.execute(delete(identity_verifications).where(_t.member_id == member_id))


def merge_step(cipher: DocumentCipher) -> MergeStep:
    """Merge step: the absorbed record's checks become the survivor's (numbers re-sealed
    for the survivor), and the survivor's level is the strongest unexpired of them all."""

    async def move(session: AsyncSession, absorbed_id: UUID, survivor_id: UUID) -> None:
        rows = (
            (
                await session.execute(
                    select(identity_verifications).where(_t.member_id == absorbed_id)
                )
            )
            .mappings()
            .all()
        )
        for row in rows:
            moved: dict[str, Any] = {"member_id": survivor_id}
            number = open_number(cipher, row)
            # A number whose key is gone stays unreadable; the check still counts.
            if number is not None:
                sealed = cipher.seal(number, **number_context(survivor_id, row["id"]))
                moved |= {"key_id": sealed.key_id, "number_ciphertext": sealed.ciphertext}
            await session.execute(
                update(identity_verifications).where(_t.id == row["id"]).values(**moved)
            )
        if rows:
            await session.execute(
                update(members)
                .where(members.c.id == survivor_id)
                .values(identity_checks=await _summary(session, survivor_id))
            )

    return move
