"""HTTP interface of the agreements register (`/agreements`).

The ministry (coordinators) records bilateral labour-migration agreements and moves
them through their stages (identification, negotiation, signature, entry into force;
suspension, abandonment), each move kept in the history with who and when; the return
cell and the observatory's analysts read the register. No personal data: nothing is
audited per person.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query

from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_service.problems import TYPE_BASE, Problem
from returnees.agreements import domain, service
from returnees.agreements.schemas import (
    AgreementPage,
    AgreementView,
    Document,
    NewAgreement,
    Quota,
    StageChange,
    StageEntry,
)
from returnees.deps import IdentityDep, ServiceDep
from returnees.problems import not_found

router = APIRouter(prefix="/agreements", tags=["agreements"])

RESOURCE = "labour_agreement"
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such agreement"}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "Not a stage it can move to; `allowed` names those"}
}
AgreementId = Annotated[UUID, Path(description="The agreement id.")]


def now() -> datetime:
    return datetime.now(UTC)


def _view(row: dict[str, Any], history: list[dict[str, Any]] | None = None) -> AgreementView:
    return AgreementView(
        id=row["id"],
        country=row["country"],
        title=row["title"],
        stage=row["stage"],
        allowed_stages=list(domain.NEXT[row["stage"]]),
        sectors=row["sectors"],
        quotas=[Quota(**q) for q in row["quotas"]],
        documents=[Document(**d) for d in row["documents"]],
        signed_on=row["signed_on"],
        in_force_on=row["in_force_on"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
        history=[StageEntry(**h) for h in history] if history is not None else None,
    )


@router.post("", status_code=201, response_model=AgreementView, responses=AUTH_RESPONSES)
async def create_agreement(
    body: NewAgreement, svc: ServiceDep, identity: IdentityDep, principal: CurrentPrincipal
) -> AgreementView:
    """Record an agreement (at any stage: one found already signed is recorded as such)."""
    identity.policy.decide(principal, RESOURCE, "manage")
    values = body.model_dump(mode="json")
    async with svc.sessions() as session, session.begin():
        row = await service.create(session, values, by=principal.subject, now=now())
        entries = await service.history(session, row["id"])
    return _view(row, entries)


@router.get("", response_model=AgreementPage, responses=AUTH_RESPONSES)
async def list_agreements(
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    country: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$")] = None,
    stage: domain.Stage | None = None,
) -> AgreementPage:
    identity.policy.decide(principal, RESOURCE, "read")
    async with svc.sessions() as session:
        rows = await service.search(session, country=country, stage=stage)
    return AgreementPage(items=[_view(r) for r in rows])


@router.get(
    "/{agreement_id}", response_model=AgreementView, responses={**AUTH_RESPONSES, **NOT_FOUND}
)
async def read_agreement(
    agreement_id: AgreementId, svc: ServiceDep, identity: IdentityDep, principal: CurrentPrincipal
) -> AgreementView:
    """The agreement and its stage history, oldest first."""
    identity.policy.decide(principal, RESOURCE, "read")
    async with svc.sessions() as session:
        row = await service.load(session, agreement_id)
        if row is None:
            raise not_found("agreement")
        entries = await service.history(session, agreement_id)
    return _view(row, entries)


@router.post(
    "/{agreement_id}/stage",
    response_model=AgreementView,
    responses={**AUTH_RESPONSES, **NOT_FOUND, **CONFLICT},
)
async def change_stage(
    agreement_id: AgreementId,
    body: StageChange,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
) -> AgreementView:
    """Move the agreement to its next stage (kept in the history with who and when)."""
    identity.policy.decide(principal, RESOURCE, "manage")
    async with svc.sessions() as session, session.begin():
        row = await service.load(session, agreement_id, lock=True)
        if row is None:
            raise not_found("agreement")
        try:
            row = await service.move(
                session,
                row,
                body.stage,
                on=body.on,
                note=body.note,
                by=principal.subject,
                now=now(),
            )
        except domain.StageRefused as error:
            raise Problem(
                409,
                "Not a stage it can move to",
                detail=f"{error}; allowed: {', '.join(error.allowed) or 'none'}.",
                type_=TYPE_BASE + "invalid-transition",
                allowed=error.allowed,
            ) from None
        entries = await service.history(session, agreement_id)
    return _view(row, entries)
