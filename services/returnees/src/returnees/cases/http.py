"""HTTP interface of cases (`/cases`).

A case worker of the return cell opens a case, or the returnee declares their return
from abroad (citizen token naming their own registry record); consular's laissez-passer
opens one by itself (``consumer.py``). Case workers assign cases, and the assigned case
worker records the intake, the needs assessment, the reintegration plan, the 3, 6 and
12 month follow-ups and the closure; the state machine answers 409 naming the actions
allowed. Health, psychosocial and vulnerability fields are sealed at rest and shown only
to the assigned case worker. Every staff read and change is audited (record = the
returnee), and so appears in the person's access log at the registry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request

from diaspora_identity.audit import AccessContext
from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_identity.policy import Decision
from diaspora_identity.principal import Principal, Role
from diaspora_reference import togo
from diaspora_service.problems import TYPE_BASE, Problem
from returnees.cases import domain, sealing, service
from returnees.cases.schemas import (
    Assignment,
    CasePage,
    CaseReferral,
    CaseView,
    Closure,
    FollowUpRecord,
    FollowUpView,
    Milestone,
    Need,
    NeedsAssessment,
    NewCase,
    Plan,
    ReturneeView,
    SensitiveView,
)
from returnees.deps import IdentityDep, ServiceDep
from returnees.members import service as members
from returnees.problems import invalid, not_found
from returnees.resources import Returnees

router = APIRouter(prefix="/cases", tags=["cases"])

RESOURCE = "returnee_case"
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such case"}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "Not possible from the current status; `allowed` names what is"}
}
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "The key service that seals sensitive fields is unreachable"}
}
SENSITIVE_FIELDS = sorted(SensitiveView.model_fields)
VIEW_FIELDS = sorted(set(CaseView.model_fields) - {"sensitive", "sensitive_withheld"})
CaseId = Annotated[UUID, Path(description="The case id.")]


def now() -> datetime:
    return datetime.now(UTC)


def _keys(svc: Returnees) -> Any:
    if svc.case_keys is None:
        raise Problem(
            503,
            "Sensitive fields unavailable",
            detail="No key service is configured to seal or open sensitive fields.",
            headers={"Retry-After": "30"},
        )
    return svc.case_keys


def settled_in(prefecture: str | None) -> dict[str, str]:
    """The case's ``prefecture`` (slug) and ``region`` (ISO 3166-2:TG) from a prefecture
    given by slug, name or former name (a 422 problem naming it when Togo has none)."""
    if prefecture is None:
        return {}
    try:
        found = togo.prefecture(prefecture)
    except togo.UnknownLocality as error:
        raise invalid(
            "Invalid case", [{"field": "prefecture", "message": str(error), "code": "unknown"}]
        ) from None
    return {"prefecture": found.slug, "region": found.region_code}


def _is_assignee(principal: Principal, row: dict[str, Any]) -> bool:
    return principal.has(Role.CASE_WORKER) and row["assigned_to"] == principal.subject


async def _sealed(
    svc: Returnees, case_id: UUID, subject: UUID, data: domain.Sensitive
) -> bytes | None:
    if data.empty:
        return None
    try:
        return await sealing.seal(_keys(svc), case_id, subject, data)
    except sealing.KeyGone:
        raise Problem(
            409, "Erased person", detail="The person was erased: nothing can be kept about them."
        ) from None


async def _view(
    svc: Returnees,
    session: Any,
    principal: Principal,
    row: dict[str, Any],
) -> tuple[CaseView, list[str]]:
    """The case as ``principal`` may see it, and the sensitive fields shown."""
    sensitive: SensitiveView | None = None
    withheld: str | None = None
    shown: list[str] = []
    if row["sensitive"] is not None:
        if not _is_assignee(principal, row):
            withheld = "not_assigned_case_worker"
        else:
            try:
                opened = await sealing.open_sealed(
                    _keys(svc), row["id"], row["sealed_subject"], row["sensitive"]
                )
            except sealing.KeyGone:
                withheld = "erased"
            else:
                sensitive = SensitiveView.model_validate(opened.as_dict())
                shown = SENSITIVE_FIELDS
    person = (
        await members.person(session, row["member_id"]) if row["member_id"] is not None else None
    )
    today = now().date()
    follow_ups = [
        FollowUpView(
            months=f["months"],
            due_on=f["due_on"],
            done_on=f["done_on"],
            notes=f["notes"],
            overdue=f["done_on"] is None and f["due_on"] < today,
        )
        for f in await service.follow_ups_of(session, row["id"])
    ]
    referred = [
        CaseReferral(
            id=r["id"],
            need=r["need"],
            partner_id=r["partner_id"],
            partner_name=r["partner_name"],
            status=r["status"],
            referred_at=r["referred_at"],
            acknowledged_at=r["acknowledged_at"],
            closed_at=r["closed_at"],
        )
        for r in await svc.case_referrals(session, row["id"])
    ]
    view = CaseView(
        id=row["id"],
        member_id=row["member_id"],
        returnee=(
            ReturneeView(
                given_name=person.given_name,
                family_name=person.family_name,
                email=person.email,
                phone=person.phone,
                preferred_language=person.preferred_language,
                country_of_residence=person.country_of_residence,
            )
            if person is not None
            else None
        ),
        origin=row["origin"],
        application_id=row["application_id"],
        status=row["status"],
        allowed_actions=domain.allowed_actions(row["status"]) if principal.is_staff else [],
        assigned_to=row["assigned_to"],
        opened_at=row["opened_at"],
        expected_arrival=row["expected_arrival"],
        return_date=row["return_date"],
        country_from=row["country_from"],
        reason=row["reason"],
        prefecture=row["prefecture"],
        region=row["region"],
        needs=[Need(**n) for n in row["needs"]],
        milestones=[Milestone(**m) for m in row["milestones"]],
        follow_ups=follow_ups,
        outcome=row["outcome"],
        outcome_notes=row["outcome_notes"],
        closed_at=row["closed_at"],
        version=row["version"],
        referrals=referred,
        sensitive=sensitive,
        sensitive_withheld=withheld,
    )
    return view, shown


async def _audit(
    svc: Returnees,
    session: Any,
    decision: Decision,
    request: Request,
    rows: list[tuple[dict[str, Any], list[str]]],
    *,
    action: str | None = None,
) -> None:
    """Staff reads and changes (the returnee's own are not audited): one entry per case,
    naming the sensitive fields when they were shown."""
    if not decision.principal.is_staff:
        return
    accesses = [(service.subject_of(row), sorted({*VIEW_FIELDS, *shown})) for row, shown in rows]
    await svc.audit.record(session, decision, AccessContext.of(request), accesses, action=action)


def _refused(error: domain.TransitionRefused) -> Problem:
    return Problem(
        409,
        "Not possible from the current status",
        detail=f"{error}; allowed: {', '.join(error.allowed) or 'nothing (final status)'}.",
        type_=TYPE_BASE + "invalid-transition",
        status_now=error.status,
        allowed=list(error.allowed),
    )


@router.post(
    "",
    status_code=201,
    response_model=CaseView,
    responses={**AUTH_RESPONSES, **UNAVAILABLE},
)
async def open_case(
    body: NewCase,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> CaseView:
    """Open a case. A case worker opens it for a returnee (their `member_id` if they are
    in the registry; status `open` when the return date is given, else `declared`). A
    returnee declares their coming return from abroad with a citizen token that names
    their registry record: the case is theirs (`pre_return`, status `declared`)."""
    decision = identity.policy.decide(principal, RESOURCE, "create")
    staff = principal.is_staff
    if not staff:
        if principal.member_id is None:
            raise Problem(
                422,
                "Register first",
                detail="A pre-return declaration needs your registry record: register, then "
                "sign in again so that your token names it.",
                type_=TYPE_BASE + "validation",
            )
        if body.member_id is not None and body.member_id != principal.member_id:
            raise Problem(403, "Forbidden", detail="A returnee declares their own return only.")
    member_id = body.member_id if staff else principal.member_id
    place = settled_in(body.prefecture)
    case_id = service.new_case_id()
    subject = member_id or case_id
    secret = domain.Sensitive(
        vulnerabilities=tuple(body.vulnerabilities or ()),
        vulnerability_notes=body.vulnerability_notes,
    )
    sealed = await _sealed(svc, case_id, subject, secret)
    async with svc.sessions() as session, session.begin():
        row = await service.open_case(
            session,
            svc.outbox,
            case_id=case_id,
            member_id=member_id,
            returnee_subject=None if staff else principal.subject,
            origin="case_worker" if staff else "pre_return",
            opened_by=principal.subject,
            now=now(),
            expected_arrival=body.expected_arrival,
            return_date=body.return_date,
            country_from=body.country_from,
            reason=body.reason,
            prefecture=place.get("prefecture"),
            region=place.get("region"),
            sensitive=sealed,
            sealed_subject=subject if sealed is not None else None,
        )
        assert row is not None
        view, shown = await _view(svc, session, principal, row)
        await _audit(svc, session, decision, request, [(row, shown)], action="create")
    return view


@router.get("", response_model=CasePage, responses=AUTH_RESPONSES)
async def list_cases(
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    assigned: Annotated[
        str | None,
        Query(max_length=200, pattern=r"^[\x21-\x7e]+$", description='"me", "none" or a subject'),
    ] = None,
    status: Annotated[list[domain.Status] | None, Query(max_length=6)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> CasePage:
    """A returnee's own cases; every case for the return cell (filter `assigned=me`)."""
    decision = identity.policy.decide(principal, RESOURCE, "list")
    async with svc.sessions() as session, session.begin():
        rows = await service.search(
            session,
            decision.where(service.SCOPE_COLUMNS),
            assigned_to=(
                principal.subject
                if assigned == "me"
                else None
                if assigned in (None, "none")
                else assigned
            ),
            unassigned=assigned == "none",
            status=status or (),
            limit=limit,
            offset=offset,
        )
        views = [await _view(svc, session, principal, row) for row in rows]
        await _audit(
            svc, session, decision, request, [(r, v[1]) for r, v in zip(rows, views, strict=True)]
        )
    return CasePage(items=[v[0] for v in views], limit=limit, offset=offset)


@router.get("/{case_id}", response_model=CaseView, responses={**AUTH_RESPONSES, **NOT_FOUND})
async def read_case(
    case_id: CaseId,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> CaseView:
    """The case; its sensitive fields only for the case worker it is assigned to (every
    staff read audited, those fields named when shown)."""
    decision = identity.policy.decide(principal, RESOURCE, "read")
    async with svc.sessions() as session, session.begin():
        row = await service.load(session, case_id, decision.where(service.SCOPE_COLUMNS))
        if row is None:
            raise not_found("case")
        view, shown = await _view(svc, session, principal, row)
        await _audit(svc, session, decision, request, [(row, shown)])
    return view


async def _work(
    svc: Returnees,
    identity: Any,
    principal: Principal,
    request: Request,
    case_id: UUID,
    action: domain.Action,
    changes: dict[str, Any],
    sensitive: dict[str, Any] | None = None,
) -> CaseView:
    """One step of the assigned case worker on the case, in one transaction."""
    decision = identity.policy.decide(principal, RESOURCE, "work")
    async with svc.sessions() as session, session.begin():
        row = await service.load(session, case_id, decision.where(service.SCOPE_COLUMNS), lock=True)
        if row is None:
            raise not_found("case")
        if not _is_assignee(principal, row):
            raise Problem(
                403,
                "Not your case",
                detail="Only the case worker the case is assigned to works on it; assign it "
                "first (PUT /cases/{id}/assignee).",
            )
        if sensitive and any(v is not None for v in sensitive.values()):
            subject = service.subject_of(row)
            current = (
                await sealing.open_sealed(
                    _keys(svc), row["id"], row["sealed_subject"], row["sensitive"]
                )
                if row["sensitive"] is not None
                else domain.Sensitive()
            )
            changes["sensitive"] = await _sealed(
                svc, row["id"], subject, current.merged(**sensitive)
            )
            changes["sealed_subject"] = subject
        try:
            row = await service.transition(session, svc.outbox, row, action, changes, now=now())
        except domain.TransitionRefused as error:
            raise _refused(error) from None
        view, shown = await _view(svc, session, principal, row)
        await _audit(svc, session, decision, request, [(row, shown)], action=action)
    return view


@router.post(
    "/{case_id}/intake",
    response_model=CaseView,
    responses={**AUTH_RESPONSES, **NOT_FOUND, **CONFLICT, **UNAVAILABLE},
)
async def record_intake(
    case_id: CaseId,
    body: NewCase,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> CaseView:
    """The intake on arrival (or corrected later): return date, country returned from,
    reason, vulnerabilities. A declared case becomes `open`; the follow-ups are planned
    3, 6 and 12 months after the return date."""
    changes = body.model_dump(
        include={"return_date", "expected_arrival", "country_from", "reason", "member_id"},
        exclude_none=True,
    )
    changes.update(settled_in(body.prefecture))
    sensitive = {
        "vulnerabilities": body.vulnerabilities,
        "vulnerability_notes": body.vulnerability_notes,
    }
    return await _work(svc, identity, principal, request, case_id, "intake", changes, sensitive)


@router.post(
    "/{case_id}/needs",
    response_model=CaseView,
    responses={**AUTH_RESPONSES, **NOT_FOUND, **CONFLICT, **UNAVAILABLE},
)
async def assess_needs(
    case_id: CaseId,
    body: NeedsAssessment,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> CaseView:
    """The needs assessment: each area with its priority and whether it is met; health
    and psychosocial notes are sealed."""
    changes = {"needs": [n.model_dump() for n in body.needs]}
    sensitive = {
        "health_notes": body.health_notes,
        "psychosocial_notes": body.psychosocial_notes,
    }
    return await _work(svc, identity, principal, request, case_id, "assess", changes, sensitive)


@router.post(
    "/{case_id}/plan",
    response_model=CaseView,
    responses={**AUTH_RESPONSES, **NOT_FOUND, **CONFLICT},
)
async def set_plan(
    case_id: CaseId,
    body: Plan,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> CaseView:
    """The reintegration plan's milestones (replaced as a whole)."""
    changes = {"milestones": [m.model_dump(mode="json") for m in body.milestones]}
    return await _work(svc, identity, principal, request, case_id, "plan", changes)


@router.post(
    "/{case_id}/close",
    response_model=CaseView,
    responses={**AUTH_RESPONSES, **NOT_FOUND, **CONFLICT},
)
async def close_case(
    case_id: CaseId,
    body: Closure,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> CaseView:
    """Close the case with its outcome."""
    changes = {"outcome": body.outcome, "outcome_notes": body.notes}
    return await _work(svc, identity, principal, request, case_id, "close", changes)


@router.post(
    "/{case_id}/cancel",
    response_model=CaseView,
    responses={**AUTH_RESPONSES, **NOT_FOUND, **CONFLICT},
)
async def cancel_case(
    case_id: CaseId,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> CaseView:
    """A declared return that did not happen."""
    return await _work(svc, identity, principal, request, case_id, "cancel", {})


@router.post(
    "/{case_id}/follow-ups/{months}",
    response_model=CaseView,
    responses={**AUTH_RESPONSES, **NOT_FOUND, **CONFLICT},
)
async def record_follow_up(
    case_id: CaseId,
    months: Annotated[int, Path(description="3, 6 or 12")],
    body: FollowUpRecord,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> CaseView:
    """Record the follow-up `months` after return."""
    decision = identity.policy.decide(principal, RESOURCE, "work")
    async with svc.sessions() as session, session.begin():
        row = await service.load(session, case_id, decision.where(service.SCOPE_COLUMNS), lock=True)
        if row is None:
            raise not_found("case")
        if not _is_assignee(principal, row):
            raise Problem(403, "Not your case", detail="Assign the case to yourself first.")
        recorded = await service.record_follow_up(
            session,
            case_id,
            months,
            done_on=body.done_on,
            notes=body.notes,
            recorded_by=principal.subject,
        )
        if recorded is None:
            raise Problem(
                409,
                "No such follow-up",
                detail="Follow-ups are at 3, 6 and 12 months, once the return date is known.",
            )
        view, shown = await _view(svc, session, principal, row)
        await _audit(svc, session, decision, request, [(row, shown)], action="follow_up")
    return view


@router.put(
    "/{case_id}/assignee",
    response_model=CaseView,
    responses={**AUTH_RESPONSES, **NOT_FOUND},
)
async def assign_case(
    case_id: CaseId,
    body: Assignment,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
) -> CaseView:
    """Assign the case to a case worker of the return cell: a case worker takes it
    (themselves only); a coordinator hands it to any case worker."""
    decision = identity.policy.decide(principal, RESOURCE, "assign")
    coordinator = principal.has(Role.MINISTRY_COORDINATOR) or principal.has(Role.ADMIN)
    if not coordinator and body.case_worker != principal.subject:
        raise Problem(
            403,
            "Forbidden",
            detail="A case worker takes a case for themselves; a coordinator hands cases out.",
        )
    async with svc.sessions() as session, session.begin():
        row = await service.load(session, case_id, decision.where(service.SCOPE_COLUMNS), lock=True)
        if row is None:
            raise not_found("case")
        row = await service.assign(session, svc.outbox, row, body.case_worker, now=now())
        view, shown = await _view(svc, session, principal, row)
        await _audit(svc, session, decision, request, [(row, shown)], action="assign")
    return view
