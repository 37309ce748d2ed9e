"""Use cases of the hand-over: building and signing the package when a passport or
identity card preparation is approved (a transition hook bootstrap composes), and the
national documentation authority's answers."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from consular.applications import service as applications
from consular.applications.service import subject_of
from consular.catalogue import service as catalogue
from consular.handover import domain
from consular.handover.tables import handover_answers, handovers
from consular.members.tables import applicants
from consular.resources import IssuedHook, TransitionHook
from consular.signing_keys import KeyRing
from diaspora_events.contracts import HandoverAnsweredV1, HandoverSentV1
from diaspora_events.outbox import OutboxWriter

# The documents of an application a package lists (id, kind, sha256 ...): the uploads
# feature's rows, composed by bootstrap.py. Until it is, ``no_documents``.
DocumentLister = Callable[[AsyncSession, dict[str, Any]], Awaitable[list[domain.DocumentRef]]]

# The columns the policy's scopes compare (policy.yaml, resource consular_handover).
SCOPE_COLUMNS: dict[str, Any] = {
    "applicant_id": handovers.c.applicant_id,
    "applicant_subject": handovers.c.applicant_subject,
    "embassy_id": handovers.c.embassy_id,
}


async def no_documents(
    session: AsyncSession, application: dict[str, Any]
) -> list[domain.DocumentRef]:
    """No uploaded document is known (the application keeps none yet)."""
    del session, application
    return []


def answer_path(handover_id: UUID) -> str:
    return f"/handovers/{handover_id}/answers"


async def _applicant(session: AsyncSession, member_id: UUID | None) -> dict[str, Any] | None:
    if member_id is None:
        return None
    row = (
        (await session.execute(select(applicants).where(applicants.c.member_id == member_id)))
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


async def send(
    session: AsyncSession,
    outbox: OutboxWriter,
    application: dict[str, Any],
    now: datetime,
    *,
    keys: KeyRing,
    issuer: str,
    list_documents: DocumentLister,
) -> dict[str, Any]:
    """Build, sign and keep the package of an application just approved, and publish it
    (``consular.handover.sent``), in the caller's transaction."""
    handover_id = uuid.uuid4()
    version = await catalogue.by_id(session, application["service_version_id"])
    required = [d.code for d in version.definition.required_documents]
    documents = []
    for ref in await list_documents(session, application):
        expires = now + domain.DOWNLOAD_LIFETIME
        reference = keys.sign(
            domain.download_claims(
                issuer=issuer,
                audience=domain.AUTHORITY_CLIENT,
                handover_id=handover_id,
                document=ref,
                now=now,
                lifetime=domain.DOWNLOAD_LIFETIME,
            ),
            typ=domain.DOWNLOAD_TYP,
        )
        documents.append((ref, reference, expires))
    document = domain.package_document(
        handover_id=handover_id,
        issuer=issuer,
        audience=domain.AUTHORITY_CLIENT,
        now=now,
        application=application,
        applicant=await _applicant(session, application["applicant_id"]),
        required_documents=required,
        documents=documents,
        answer_path=answer_path(handover_id),
    )
    package = keys.sign(document, typ=domain.PACKAGE_TYP)
    row = {
        "id": handover_id,
        "application_id": application["id"],
        "applicant_id": application["applicant_id"],
        "applicant_subject": application["applicant_subject"],
        "embassy_id": application["embassy_id"],
        "service_type": application["service_type"],
        "status": "sent",
        "kid": keys.kid,
        "package": package,
        "sent_at": now,
        "updated_at": now,
        "reason": None,
        "document_number": None,
        "version": 1,
    }
    await session.execute(handovers.insert().values(**row))
    await outbox.add(
        session,
        HandoverSentV1(
            handover_id=handover_id,
            application_id=application["id"],
            applicant_id=application["applicant_id"],
            subject_id=subject_of(application),
            service_type=application["service_type"],
            embassy_id=application["embassy_id"],
            kid=keys.kid,
            sent_at=now,
            package=package,
        ),
    )
    return row


def on_approval(keys: KeyRing, issuer: str, list_documents: DocumentLister) -> TransitionHook:
    """The applications' transition hook: a passport or identity card preparation just
    approved gets its package."""

    async def hook(
        session: AsyncSession,
        outbox: OutboxWriter,
        before: dict[str, Any],
        after: dict[str, Any],
        action: str,
        now: datetime,
    ) -> None:
        del before
        if action == "approve" and after["service_type"] in domain.HANDOVER_TYPES:
            await send(
                session, outbox, after, now, keys=keys, issuer=issuer, list_documents=list_documents
            )

    return hook


async def load(
    session: AsyncSession,
    where: Any,
    *,
    handover_id: UUID | None = None,
    application_id: UUID | None = None,
    lock: bool = False,
) -> dict[str, Any] | None:
    statement = select(handovers).where(where)
    if handover_id is not None:
        statement = statement.where(handovers.c.id == handover_id)
    if application_id is not None:
        statement = statement.where(handovers.c.application_id == application_id)
    if lock:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).mappings().first()
    return dict(row) if row is not None else None


async def answers(session: AsyncSession, handover_id: UUID) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(handover_answers)
        .where(handover_answers.c.handover_id == handover_id)
        .order_by(handover_answers.c.id)
    )
    return [dict(r) for r in rows.mappings()]


async def answer(
    session: AsyncSession,
    outbox: OutboxWriter,
    handover: dict[str, Any],
    application: dict[str, Any],
    *,
    given: domain.Answer,
    reason: str | None,
    document_number: str | None,
    actor_subject: str,
    actor_client: str | None,
    now: datetime,
    on_issued: IssuedHook | None = None,
) -> tuple[dict[str, Any], bool]:
    """Apply the authority's answer to a (locked) hand-over and its (locked) application:
    the hand-over's status moves, the application's history and the person hear of it
    (``produced`` issues the application when it is still ``approved``). Returns the
    hand-over and whether anything changed (a repeated answer changes nothing)."""
    status: str = handover["status"]
    moves = domain.check_answer(
        status,
        given,
        reason=reason,
        document_number=document_number,
        kept_reason=handover["reason"],
        kept_number=handover["document_number"],
    )
    if not moves:
        return handover, False
    values = {
        "status": given,
        "reason": reason,
        "document_number": document_number,
        "updated_at": now,
        "version": handover["version"] + 1,
    }
    await session.execute(
        update(handovers).where(handovers.c.id == handover["id"]).values(**values)
    )
    await session.execute(
        handover_answers.insert().values(
            handover_id=handover["id"],
            answer=given,
            from_status=status,
            reason=reason,
            document_number=document_number,
            actor_subject=actor_subject,
            actor_client=actor_client,
            at=now,
        )
    )
    await outbox.add(
        session,
        HandoverAnsweredV1(
            handover_id=handover["id"],
            application_id=application["id"],
            applicant_id=application["applicant_id"],
            subject_id=subject_of(application),
            embassy_id=handover["embassy_id"],
            answer=given,
            from_status=status,
            answered_at=now,
            reason=reason,
            document_number=document_number,
        ),
    )
    authority = applications.Actor(subject=actor_subject, side="authority")
    if given == "produced" and application["status"] == "approved":
        await applications.apply_transition(
            session,
            outbox,
            application,
            action="record_production",
            actor=authority,
            reason=f"produced by the national documentation authority: {document_number}",
            answers=None,
            now=now,
            on_issued=on_issued,
        )
    else:
        await applications.note_status(
            session,
            outbox,
            application,
            action=f"handover_{given}",
            reason=reason if given == "rejected" else None,
            actor=authority,
            now=now,
        )
    return {**handover, **values}, True
