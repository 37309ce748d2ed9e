"""The rights of the person (Togo's law n°2019-014): see and export everything held,
correct it (``service.update_member``), give and withdraw consents, and erasure.

Erasure deletes the person's record and everything attached to it in the
registry's database (documents, consents, history, the outbox copies of their
member events, idempotency records), runs the erasure steps
for the parts other modules own, keeps only the member id (``erased_members``)
and publishes ``registry.member.erased`` in the same transaction, which every
other service honours. Audit entries stay (append-only): they hold ids, roles,
field names and staff identities, never the person's data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.contracts import MemberErasedV1, MemberUpdatedV1
from diaspora_events.outbox import OutboxWriter
from diaspora_identity.audit import AccessContext, AuditTrail
from diaspora_identity.policy import Decision
from registry.crypto import DocumentCipher
from registry.identity.service import verification_view
from registry.identity.tables import identity_verifications
from registry.members.access import (
    SCOPE_COLUMNS,
    actor_for,
    bump,
    check_version,
    locked_member,
    returned,
)
from registry.members.errors import MemberNotFound
from registry.members.profile import ConsentMethod, ConsentPurpose
from registry.members.reads import ACCESS_LOG_FIELDS, HISTORY_FIELDS
from registry.members.records import (
    MEMBER_FIELDS,
    consents_of,
    documents_of,
    profile_of,
    record_change,
    view_of,
)
from registry.members.tables import erased_members, member_changes, member_consents, members
from registry.resources import ErasureStep
from registry.tables import audit_log, outbox

log = structlog.get_logger(__name__)

EXPORT_FORMAT = "tg-diaspora-registry-export/1"


class ConsentMethodRequired(Exception):
    """Staff recording a person's consent must say how it was given."""


async def _in_scope(
    session: AsyncSession, decision: Decision, member_id: UUID
) -> Mapping[Any, Any]:
    row = (
        await session.execute(
            select(members).where(members.c.id == member_id, decision.where(SCOPE_COLUMNS))
        )
    ).first()
    if row is None:
        raise MemberNotFound(str(member_id))
    return row._mapping


async def export_member(
    *,
    sessions: async_sessionmaker[AsyncSession],
    audit: AuditTrail,
    cipher: DocumentCipher,
    decision: Decision,
    documents_decision: Decision | None,
    context: AccessContext,
    member_id: UUID,
) -> dict[str, Any]:
    """Everything the registry holds on the person: the record (document numbers in clear
    for the person only), every consent decision, the history of changes, the identity
    checks recorded, and who accessed the record. A copy made by staff (on the person's
    request) is audited."""
    async with sessions() as session, session.begin():
        row = await _in_scope(session, decision, member_id)
        numbers = documents_decision is not None and documents_decision.permits(row)
        documents = (await documents_of(session, [member_id]))[member_id]
        current = (await consents_of(session, [member_id]))[member_id]
        record = view_of(row, documents, current, cipher=cipher, with_numbers=numbers)
        record["owner_subject"] = row["owner_subject"]
        consent_rows = await session.execute(
            select(member_consents)
            .where(member_consents.c.member_id == member_id)
            .order_by(member_consents.c.id)
        )
        history_rows = await session.execute(
            select(*(member_changes.c[f] for f in HISTORY_FIELDS))
            .where(member_changes.c.member_id == member_id)
            .order_by(member_changes.c.id)
        )
        checks = await session.execute(
            select(identity_verifications)
            .where(identity_verifications.c.member_id == member_id)
            .order_by(identity_verifications.c.verified_at)
        )
        access_rows = await session.execute(
            select(*(audit_log.c[f] for f in ACCESS_LOG_FIELDS))
            .where(audit_log.c.record_id == member_id)
            .order_by(audit_log.c.occurred_at, audit_log.c.id)
        )
        export = {
            "format": EXPORT_FORMAT,
            "exported_at": datetime.now(UTC),
            "controller": "Ministère des Affaires étrangères, de l'Intégration régionale et "
            "des Togolais de l'extérieur — registre de la diaspora",
            "member": record,
            "consent_decisions": [
                {
                    "purpose": c["purpose"],
                    "granted": c["granted"],
                    "at": c["at"],
                    "method": c["method"],
                    "actor_role": c["actor_role"],
                    "actor_subject": c["actor_subject"],
                }
                for c in consent_rows.mappings()
            ],
            "history": [dict(h) for h in history_rows.mappings()],
            # The identity checks officers recorded (document numbers as for the record).
            "identity_verifications": [
                verification_view(c, cipher, with_number=numbers) for c in checks.mappings()
            ],
            "access_log": [dict(a) for a in access_rows.mappings()],
            "other_services": (
                "Notifications keeps your contact channels, preferences and the messages "
                "sent to you: see its own export. Erasure here erases them there too."
            ),
        }
        if not decision.is_own(row):
            await audit.record(
                session, decision, context, [(member_id, [*MEMBER_FIELDS, "history"])]
            )
    return export


async def consents(
    *,
    sessions: async_sessionmaker[AsyncSession],
    audit: AuditTrail,
    decision: Decision,
    context: AccessContext,
    member_id: UUID,
) -> dict[str, Any]:
    """The current decision per purpose and every decision before it."""
    async with sessions() as session, session.begin():
        row = await _in_scope(session, decision, member_id)
        current = (await consents_of(session, [member_id]))[member_id]
        every = await session.execute(
            select(member_consents)
            .where(member_consents.c.member_id == member_id)
            .order_by(member_consents.c.id.desc())
        )
        result = {
            "member_id": member_id,
            "current": [
                {"purpose": c["purpose"], "granted": c["granted"], "at": c["at"]} for c in current
            ],
            "history": [
                {
                    "purpose": c["purpose"],
                    "granted": c["granted"],
                    "at": c["at"],
                    "method": c["method"],
                    "actor_role": c["actor_role"],
                    "actor_subject": c["actor_subject"],
                }
                for c in every.mappings()
            ],
        }
        if not decision.is_own(row):
            await audit.record(session, decision, context, [(member_id, ["consents"])])
    return result


async def set_consent(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox_writer: OutboxWriter,
    audit: AuditTrail,
    decision: Decision,
    context: AccessContext,
    member_id: UUID,
    purpose: ConsentPurpose,
    granted: bool,
    method: ConsentMethod | None,
    expected_version: int | None = None,
) -> dict[str, Any]:
    """Give (``granted``) or withdraw a consent. The person does it themselves; staff
    record it for them, saying how the person expressed it when giving it. The decision
    is kept with the earlier ones (history), and the profile event goes out."""
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        row = await locked_member(session, decision, member_id)
        check_version(row, expected_version)
        actor = actor_for(decision, row)
        if actor.is_person:
            method = "self_service"
        elif method in (None, "self_service"):
            # Staff may record a withdrawal however the person asked for it (it only ever
            # protects them); a consent they record must say how the person gave it.
            if granted:
                raise ConsentMethodRequired()
            method = "in_person"
        before = (await consents_of(session, [member_id]))[member_id]
        previous = next((c for c in before if c["purpose"] == purpose), None)
        documents = (await documents_of(session, [member_id]))[member_id]
        if previous is not None and previous["granted"] == granted:
            # Already so: no decision to record, but the whole record goes back, and staff
            # reading it is audited like a read (issue 15).
            unchanged = view_of(row, documents, before)
            if not actor.is_person:
                await audit.record(
                    session, decision, context, [(member_id, returned(unchanged))], action="read"
                )
            return unchanged
        await session.execute(
            member_consents.insert().values(
                member_id=member_id,
                purpose=purpose,
                granted=granted,
                at=now,
                method=method,
                actor_role=actor.role,
                actor_subject=actor.subject,
            )
        )
        after_row = await bump(session, member_id, {}, now)
        after = (await consents_of(session, [member_id]))[member_id]
        await record_change(
            session,
            member_id=member_id,
            action="consent_granted" if granted else "consent_withdrawn",
            actor_role=actor.role,
            actor_subject=actor.subject,
            fields=["consents"],
            old={"consents": [_consent(c) for c in before]},
            new={"consents": [_consent(c) for c in after]},
            version=after_row["version"],
            request_id=context.request_id,
            at=now,
        )
        await outbox_writer.add(
            session,
            MemberUpdatedV1(
                member_id=member_id,
                updated_at=now,
                changed_fields=["consents"],
                profile=profile_of(after_row, after),
            ),
            subject=str(member_id),
        )
        if not actor.is_person:
            await audit.record(session, decision, context, [(member_id, ["consents"])])
    return view_of(after_row, documents, after)


def _consent(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {"purpose": row["purpose"], "granted": row["granted"], "at": row["at"]}


async def erase_member(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox_writer: OutboxWriter,
    audit: AuditTrail,
    decision: Decision,
    context: AccessContext,
    member_id: UUID,
    steps: Sequence[ErasureStep],
    expected_version: int | None = None,
) -> datetime:
    """Erase the person from the registry and tell every service (one transaction): the
    other features' erasure ``steps`` run in it, before the member row is deleted."""
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        row = await locked_member(session, decision, member_id)
        check_version(row, expected_version)
        actor = actor_for(decision, row)
        for step in steps:
            await step(session, member_id)
        # Documents, consents and history go with the row (foreign keys ON DELETE CASCADE);
        # so do the Idempotency-Key and request digest, which are columns of the row.
        await session.execute(delete(members).where(members.c.id == member_id))
        # The outbox keeps the bytes of every member event, published or not: the person's
        # name, contacts and profile. Consumers get the erasure event instead.
        await session.execute(
            delete(outbox).where(
                outbox.c.key == str(member_id), outbox.c.event_type.like("registry.member.%")
            )
        )
        await session.execute(
            erased_members.insert().values(
                member_id=member_id,
                erased_at=now,
                actor_role=actor.role,
                actor_subject=actor.subject,
            )
        )
        await outbox_writer.add(
            session, MemberErasedV1(member_id=member_id, erased_at=now), subject=str(member_id)
        )
        if not actor.is_person:
            await audit.record(session, decision, context, [(member_id, ["erased"])])
    log.info("member_erased", member_id=str(member_id), by=actor.role)
    return now


async def erased_at(sessions: async_sessionmaker[AsyncSession], member_id: UUID) -> datetime | None:
    """When this member id was erased, if it was (the id is all that remains)."""
    async with sessions() as session:
        found = (
            await session.execute(
                select(erased_members.c.erased_at).where(erased_members.c.member_id == member_id)
            )
        ).first()
    return found.erased_at if found else None
