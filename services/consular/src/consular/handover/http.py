"""HTTP interface of the hand-over to the national documentation authority.

- ``GET /handovers/{id}``, ``GET /applications/{id}/handover``: the package's status and
  the authority's answers (the applicant, officers of the embassy, coordinators, and the
  authority's client, which also gets the signed package).
- ``POST /handovers/{id}/answers``: the authority (role ``service``, the client the policy
  names) answers accepted, rejected (reason) or produced (document number). A repeat of
  the last answer is 200 with nothing new; an answer out of order is 409 naming the
  allowed ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from sqlalchemy import true

from consular.applications import service as applications
from consular.deps import IdentityDep, ServiceDep
from consular.handover import domain, service
from consular.handover.schemas import AnswerEntry, AnswerRequest, HandoverView
from consular.problems import not_found
from diaspora_identity.audit import AccessContext
from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_identity.policy import Decision
from diaspora_identity.principal import Principal
from diaspora_service.problems import TYPE_BASE, Problem

router = APIRouter(tags=["handover"])

RESOURCE = "consular_handover"
FIELDS = sorted(HandoverView.model_fields)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such hand-over"}}


def now() -> datetime:
    return datetime.now(UTC)


def _is_own(principal: Principal, row: dict[str, Any]) -> bool:
    return row["applicant_subject"] == principal.subject or (
        principal.member_id is not None and row["applicant_id"] == principal.member_id
    )


def _view(principal: Principal, row: dict[str, Any], entries: list[dict[str, Any]]) -> HandoverView:
    staff = principal.is_staff and not _is_own(principal, row)
    return HandoverView(
        id=row["id"],
        application_id=row["application_id"],
        service_type=row["service_type"],
        embassy_id=row["embassy_id"],
        status=row["status"],
        sent_at=row["sent_at"],
        updated_at=row["updated_at"],
        reason=row["reason"],
        document_number=row["document_number"],
        kid=row["kid"],
        package=row["package"] if staff else None,
        allowed_answers=list(domain.NEXT.get(row["status"], ())),
        answers=[
            AnswerEntry(
                answer=e["answer"],
                from_status=e["from_status"],
                reason=e["reason"],
                document_number=e["document_number"],
                at=e["at"],
            )
            for e in entries
        ],
    )


async def _audit(
    svc: Any, session: Any, decision: Decision, request: Request, row: dict[str, Any], action: str
) -> None:
    if decision.principal.is_staff and not _is_own(decision.principal, row):
        record = row["applicant_id"] or row["application_id"]
        await svc.audit.record(
            session, decision, AccessContext.of(request), [(record, FIELDS)], action=action
        )


async def _read(
    svc: Any,
    identity: Any,
    principal: Principal,
    request: Request,
    *,
    handover_id: UUID | None = None,
    application_id: UUID | None = None,
) -> HandoverView:
    decision = identity.policy.decide(principal, RESOURCE, "read")
    async with svc.sessions() as session, session.begin():
        row = await service.load(
            session,
            decision.where(service.SCOPE_COLUMNS),
            handover_id=handover_id,
            application_id=application_id,
        )
        if row is None:
            raise not_found("hand-over")
        entries = await service.answers(session, row["id"])
        await _audit(svc, session, decision, request, row, "read")
    return _view(principal, row, entries)


@router.get(
    "/handovers/{handover_id}",
    response_model=HandoverView,
    responses={**AUTH_RESPONSES, **NOT_FOUND},
)
async def get_handover(
    handover_id: UUID,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> HandoverView:
    """A hand-over: its status, the authority's answers, and (to the authority and staff)
    the signed package."""
    return await _read(svc, identity, principal, request, handover_id=handover_id)


@router.get(
    "/applications/{application_id}/handover",
    response_model=HandoverView,
    responses={**AUTH_RESPONSES, **NOT_FOUND},
)
async def get_application_handover(
    application_id: UUID,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> HandoverView:
    """The hand-over of an application (a passport or identity card preparation, once
    approved)."""
    return await _read(svc, identity, principal, request, application_id=application_id)


@router.post(
    "/handovers/{handover_id}/answers",
    response_model=HandoverView,
    responses={
        **AUTH_RESPONSES,
        **NOT_FOUND,
        409: {"description": "Answer out of order; `allowed` names the possible ones"},
        422: {"description": "Malformed answer (reason or document number missing)"},
    },
)
async def answer_handover(
    handover_id: UUID,
    body: AnswerRequest,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> HandoverView:
    """The national documentation authority answers a package: accepted, rejected (with a
    reason) or produced (with the document number; the application is then issued). The
    same answer again is 200 and changes nothing; one out of order is 409."""
    decision = identity.policy.decide(principal, RESOURCE, "answer")
    async with svc.sessions() as session, session.begin():
        found = await service.load(
            session, decision.where(service.SCOPE_COLUMNS), handover_id=handover_id
        )
        if found is None:
            raise not_found("hand-over")
        # The application first, then the hand-over: the order of an approval's locks.
        application = await applications.load(
            session,
            found["application_id"],
            true(),
            lock=True,
        )
        handover = await service.load(
            session, decision.where(service.SCOPE_COLUMNS), handover_id=handover_id, lock=True
        )
        assert application is not None
        assert handover is not None
        try:
            changed, moved = await service.answer(
                session,
                svc.outbox,
                handover,
                application,
                given=body.answer,
                reason=body.reason,
                document_number=body.document_number,
                actor_subject=principal.subject,
                actor_client=principal.client_id,
                now=now(),
                on_issued=svc.on_issued,
            )
        except domain.AnswerOutOfOrder as error:
            raise Problem(
                409,
                "Answer not allowed",
                detail=str(error),
                type_=TYPE_BASE + "answer-out-of-order",
                status_now=error.status,
                allowed=error.allowed,
            ) from None
        if moved:
            await _audit(svc, session, decision, request, changed, f"handover_{body.answer}")
        entries = await service.answers(session, handover_id)
    return _view(principal, changed, entries)
