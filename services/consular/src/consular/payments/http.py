"""HTTP interface of payments by reference (no card processing).

- ``GET /applications/{id}/payments``: what the application owes, what is paid, the
  receipts (the applicant, the officers of its embassy, coordinators).
- ``POST /applications/{id}/payments``: an officer of the case's embassy records a payment
  (method, payer's reference, amount, currency) and gets its receipt number.
- ``POST /payments/{id}/void``: the ministry voids a receipt with a reason (audited); the
  fee is owed again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request

from consular.applications import service as applications
from consular.deps import IdentityDep, ServiceDep
from consular.payments import service
from consular.payments.schemas import NewPayment, PaymentStatus, Receipt, VoidRequest
from consular.problems import invalid, not_found
from diaspora_identity.audit import AccessContext
from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_identity.policy import Decision
from diaspora_identity.principal import Principal
from diaspora_service.problems import TYPE_BASE, Problem

router = APIRouter(tags=["payments"])

RESOURCE = "consular_payment"
FIELDS = sorted(Receipt.model_fields)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such application"}}


def now() -> datetime:
    return datetime.now(UTC)


def _receipt(row: dict[str, Any], staff: bool) -> Receipt:
    return Receipt(
        id=row["id"],
        application_id=row["application_id"],
        embassy_id=row["embassy_id"],
        receipt_number=row["receipt_number"],
        method=row["method"],
        payer_reference=row["payer_reference"],
        amount=str(row["amount"]),
        currency=row["currency"],
        recorded_at=row["recorded_at"],
        recorded_by=row["recorded_by"] if staff else None,
        voided_at=row["voided_at"],
        void_reason=row["void_reason"],
        voided_by=row["voided_by"] if staff else None,
    )


def _is_own(principal: Principal, row: dict[str, Any]) -> bool:
    return row["applicant_subject"] == principal.subject or (
        principal.member_id is not None and row["applicant_id"] == principal.member_id
    )


async def _audit(
    svc: Any, session: Any, decision: Decision, request: Request, row: dict[str, Any], action: str
) -> None:
    """Staff reads and changes (the applicant's own reads are not audited)."""
    if decision.principal.is_staff and not _is_own(decision.principal, row):
        record = row["applicant_id"] or row["application_id"] or row["id"]
        await svc.audit.record(
            session, decision, AccessContext.of(request), [(record, FIELDS)], action=action
        )


async def _status(session: Any, application: dict[str, Any], staff: bool) -> PaymentStatus:
    owed = await service.balance(session, application)
    rows = await service.receipts(session, application["id"])
    return PaymentStatus(
        application_id=application["id"],
        fee_amount=str(owed.amount),
        currency=owed.currency,
        paid=str(owed.paid),
        due=str(owed.due),
        settled=owed.settled,
        receipts=[_receipt(r, staff) for r in rows],
    )


async def _application(
    session: Any, decision: Decision, application_id: UUID, *, lock: bool = False
) -> dict[str, Any]:
    principal = decision.principal
    where = applications.visible(
        decision.where(applications.SCOPE_COLUMNS), principal.member_id, principal.subject
    )
    row = await applications.load(session, application_id, where, lock=lock)
    if row is None:
        raise not_found("application")
    return row


@router.get(
    "/applications/{application_id}/payments",
    response_model=PaymentStatus,
    responses={**AUTH_RESPONSES, **NOT_FOUND},
)
async def payment_status(
    application_id: UUID,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> PaymentStatus:
    """What the application owes (its catalogue version's fee), what is paid, and every
    receipt (voided ones with their reason)."""
    decision = identity.policy.decide(principal, RESOURCE, "read")
    async with svc.sessions() as session, session.begin():
        row = await _application(session, decision, application_id)
        staff = principal.is_staff and not _is_own(principal, row)
        found = await _status(session, row, staff)
        await _audit(svc, session, decision, request, {**row, "application_id": row["id"]}, "read")
    return found


@router.post(
    "/applications/{application_id}/payments",
    status_code=201,
    response_model=Receipt,
    responses={
        **AUTH_RESPONSES,
        **NOT_FOUND,
        409: {"description": "Already paid, nothing owed, or the application takes no payment"},
        422: {"description": "Wrong amount or currency (the fee's, in full)"},
    },
)
async def record_payment(
    application_id: UUID,
    body: NewPayment,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> Receipt:
    """An officer of the case's embassy records the payment of its fee, made by reference
    (cash at the embassy, bank transfer, mobile money); the answer is the receipt, with
    its number (sequential per embassy and year, e.g. FR-PAR-2026-000123)."""
    decision = identity.policy.decide(principal, RESOURCE, "record")
    async with svc.sessions() as session, session.begin():
        row = await _application(session, decision, application_id, lock=True)
        try:
            payment = await service.record(
                session,
                svc.outbox,
                row,
                method=body.method,
                payer_reference=body.payer_reference,
                amount=body.amount,
                currency=body.currency,
                actor_subject=principal.subject,
                now=now(),
            )
        except service.NotPayable as error:
            raise Problem(
                409,
                "No payment in this status",
                detail=str(error),
                type_=TYPE_BASE + "not-payable",
                status_now=error.status,
            ) from None
        except service.NothingOwed as error:
            raise Problem(
                409,
                "Nothing owed",
                detail=str(error),
                type_=TYPE_BASE + "nothing-owed",
                receipt_number=error.receipt_number,
            ) from None
        except service.WrongAmount as error:
            raise invalid(
                "Wrong amount or currency",
                [{"field": e.field, "message": e.message, "code": e.code} for e in error.errors],
            ) from None
        await _audit(svc, session, decision, request, payment, "record_payment")
    return _receipt(payment, staff=True)


@router.post(
    "/payments/{payment_id}/void",
    response_model=Receipt,
    responses={
        **AUTH_RESPONSES,
        404: {"description": "No such payment"},
        409: {"description": "Already voided"},
    },
)
async def void_payment(
    payment_id: UUID,
    body: VoidRequest,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> Receipt:
    """The ministry voids a receipt (a payment recorded in error, a bounced transfer), with
    a reason: the fee is owed again; the receipt stays listed as voided, its number is
    never given again."""
    decision = identity.policy.decide(principal, RESOURCE, "void")
    async with svc.sessions() as session, session.begin():
        found = await service.load(session, payment_id, lock=True)
        if found is None or not decision.permits(found):
            raise not_found("payment")
        try:
            changed = await service.void(
                session,
                svc.outbox,
                found,
                reason=body.reason,
                actor_subject=principal.subject,
                actor_role=",".join(decision.roles),
                now=now(),
            )
        except service.AlreadyVoided:
            raise Problem(
                409,
                "Already voided",
                detail=f"Receipt {found['receipt_number']} is already voided.",
                type_=TYPE_BASE + "already-voided",
            ) from None
        await _audit(svc, session, decision, request, changed, "void_payment")
    return _receipt(changed, staff=True)
