"""HTTP interface of referrals (`/referrals`).

A case worker of the return cell refers one need of a case to a partner organisation
that offers it in the returnee's prefecture (422 naming why otherwise). The partner's
case workers (`partner_caseworker` whose `partner_org` is the partner's) see only their
organisation's referrals (any other: 404), acknowledge them, then report them done or
refused with a reason; the cell may cancel an open one. Each move is checked against the
status machine (409 naming the allowed actions). The returnee (a citizen whose token's
`member_id` is the referral's) follows the status of their referrals. Staff reads and
changes are audited (record = the returnee).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import true

from diaspora_identity.audit import AccessContext
from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_identity.policy import Decision
from diaspora_identity.principal import Principal, Role
from diaspora_service.conditional import (
    PRECONDITION_RESPONSES,
    IfMatch,
    expected_version,
    set_etag,
    version_conflict,
)
from diaspora_service.problems import TYPE_BASE, Problem
from returnees.cases import service as cases
from returnees.deps import IdentityDep, ServiceDep
from returnees.members import service as members
from returnees.partners import domain as partners_domain
from returnees.partners import service as partners
from returnees.problems import invalid, not_found
from returnees.referrals import domain, service
from returnees.referrals.schemas import (
    HistoryEntry,
    NewReferral,
    PartnerRef,
    ReferralPage,
    ReferralView,
    TransitionRequest,
)

router = APIRouter(prefix="/referrals", tags=["referrals"])

RESOURCE = "returnee_referral"
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such referral"}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "Not possible from the current status; `allowed` names what is"}
}
VIEW_FIELDS = sorted(ReferralView.model_fields)
# The cell: who refers and may cancel.
CELL_ROLES = frozenset({Role.CASE_WORKER, Role.MINISTRY_COORDINATOR, Role.ADMIN})
# Who refers any case; a case worker refers the cases assigned to them only.
COORDINATING_ROLES = frozenset({Role.MINISTRY_COORDINATOR, Role.ADMIN})
# A case in these statuses takes no referral.
CASE_FINAL = frozenset({"closed", "cancelled"})


def now() -> datetime:
    return datetime.now(UTC)


def _side(principal: Principal, row: dict[str, Any]) -> domain.Side | None:
    if principal.has(Role.PARTNER_CASEWORKER) and principal.partner_org == row["partner_org"]:
        return "partner"
    if principal.roles & CELL_ROLES:
        return "cell"
    return None


def _is_returnee(principal: Principal, row: dict[str, Any]) -> bool:
    return (
        not principal.is_staff
        and principal.member_id is not None
        and row["member_id"] == principal.member_id
    )


def _view(
    principal: Principal,
    row: dict[str, Any],
    partner_name: str,
    *,
    history: list[dict[str, Any]] | None = None,
) -> ReferralView:
    at = now()
    stage = domain.overdue_stage(row["status"], row["acknowledge_by"], row["complete_by"], at)
    base = ReferralView(
        id=row["id"],
        case_id=row["case_id"],
        member_id=row["member_id"],
        partner=PartnerRef(id=row["partner_id"], partner_org=row["partner_org"], name=partner_name),
        need=row["need"],
        status=row["status"],
        referred_at=row["referred_at"],
        acknowledge_by=row["acknowledge_by"],
        complete_by=row["complete_by"],
        acknowledged_at=row["acknowledged_at"],
        closed_at=row["closed_at"],
        overdue=stage,
        escalated=(
            row["acknowledge_escalated_at"] is not None or row["complete_escalated_at"] is not None
        ),
        version=row["version"],
    )
    if not principal.is_staff:
        # The returnee: the status of their referral, not the partners' notes.
        return base
    return base.model_copy(
        update={
            "outcome": row["outcome"],
            "priority": row["priority"],
            "prefecture": row["prefecture"],
            "region": row["region"],
            "language": row["language"],
            "note": row["note"],
            "referred_by": row["referred_by"],
            "acknowledge_escalated_at": row["acknowledge_escalated_at"],
            "complete_escalated_at": row["complete_escalated_at"],
            "allowed_actions": domain.allowed_actions(row["status"], _side(principal, row)),
            "history": (
                [
                    HistoryEntry(
                        action=h["action"],
                        from_status=h["from_status"],
                        to_status=h["to_status"],
                        reason=h["reason"],
                        actor_side=h["actor_side"],
                        actor_subject=h["actor_subject"],
                        at=h["at"],
                    )
                    for h in history
                ]
                if history is not None
                else None
            ),
        }
    )


async def _audit(
    svc: Any,
    session: Any,
    decision: Decision,
    request: Request,
    rows: list[dict[str, Any]],
    *,
    action: str | None = None,
) -> None:
    """Staff reads and changes of referrals (the returnee's own are not audited)."""
    principal = decision.principal
    if not principal.is_staff:
        return
    accesses = [(row["member_id"] or row["id"], VIEW_FIELDS) for row in rows]
    if accesses:
        await svc.audit.record(
            session, decision, AccessContext.of(request), accesses, action=action
        )


async def _partner_names(session: Any, rows: list[dict[str, Any]]) -> dict[UUID, str]:
    return await service.partner_names(session, {r["partner_id"] for r in rows})


def _case_for_referral(
    principal: Principal, case: dict[str, Any] | None, body: NewReferral
) -> tuple[str, str | None]:
    """Check that ``principal`` may refer ``body.need`` of ``case``; the prefecture (slug)
    the referral is for and the region. Raises the problem saying why not."""
    if case is None:
        raise not_found("case")
    if not principal.roles & COORDINATING_ROLES and not (
        principal.has(Role.CASE_WORKER) and case["assigned_to"] == principal.subject
    ):
        raise Problem(
            403,
            "Not your case",
            detail="Only the case worker the case is assigned to, or a coordinator, refers "
            "its needs.",
        )
    if case["status"] in CASE_FINAL:
        raise Problem(
            409,
            "The case is over",
            detail=f"The case is {case['status']}: its needs are no longer referred.",
            type_=TYPE_BASE + "case-not-active",
            status_now=case["status"],
        )
    assessed = sorted(n["area"] for n in case["needs"])
    if body.need not in assessed:
        listed = ", ".join(assessed) or "none yet"
        raise _field_error(
            "need",
            f"the case's needs assessment does not list {body.need} (lists: {listed})",
            "not_assessed",
        )
    given = _slug(body.prefecture) if body.prefecture is not None else None
    settled: str | None = case["prefecture"]
    if settled is not None and given is not None and given != settled:
        raise _field_error(
            "prefecture",
            f"the case records that the returnee settles in {settled}; leave it out",
            "differs_from_case",
        )
    prefecture = settled or given
    if prefecture is None:
        raise _field_error(
            "prefecture",
            "the case records no prefecture: record it at intake, or give it here",
            "missing",
        )
    return prefecture, case["region"]


def _slug(prefecture: str) -> str:
    try:
        slug, _region = partners_domain.prefecture_slug(prefecture)
    except partners_domain.UnknownPlace as error:
        raise _field_error("prefecture", str(error), "unknown") from None
    return slug


def _field_error(field: str, message: str, code: str = "invalid") -> Problem:
    return invalid("Invalid referral", [{"field": field, "message": message, "code": code}])


@router.post(
    "",
    status_code=201,
    response_model=ReferralView,
    responses={
        **AUTH_RESPONSES,
        403: {"description": "Not the case's assigned case worker nor a coordinator"},
        404: {"description": "No such case (or not one the caller may see)"},
        409: {
            "description": "The case is closed or cancelled, or this need of the case is "
            "already referred to this partner"
        },
        422: {
            "description": "Invalid body, a need the case's assessment does not list, or "
            "the partner cannot take it: the reason"
        },
    },
)
async def refer(
    body: NewReferral,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
) -> ReferralView:
    """Refer a need of a case to a partner that offers it in the returnee's prefecture;
    the partner acknowledges within the SLA's days, then reports the outcome. The case
    says who the returnee is and where they settle; only its assigned case worker (or a
    coordinator) refers it, a need its assessment lists, while it is not closed or
    cancelled."""
    decision = identity.policy.decide(principal, RESOURCE, "create")
    seeing = identity.policy.decide(principal, "returnee_case", "read")
    if body.prefecture is not None:
        _slug(body.prefecture)
    settings = svc.settings
    async with svc.sessions() as session, session.begin():
        case = await cases.load(session, body.case_id, seeing.where(cases.SCOPE_COLUMNS), lock=True)
        prefecture, _region = _case_for_referral(principal, case, body)
        assert case is not None
        language = body.language
        if language is None and case["member_id"] is not None:
            person = await members.person(session, case["member_id"])
            language = person.preferred_language if person is not None else None
        partner = await partners.load(session, body.partner_id, true())
        if partner is None:
            raise _field_error("partner_id", "no such partner", "unknown")
        try:
            row = await service.refer(
                session,
                svc.outbox,
                partner,
                service.Referral(
                    case_id=body.case_id,
                    member_id=case["member_id"],
                    need=body.need,
                    priority=body.priority,
                    prefecture=prefecture,
                    language=language,
                    note=body.note,
                ),
                actor=principal.subject,
                sla=service.Sla(
                    acknowledge_days=settings.referral_acknowledge_days,
                    complete_days=settings.referral_complete_days,
                ),
                now=now(),
            )
        except partners_domain.NotCovered as error:
            raise Problem(
                422,
                "The partner cannot take this referral",
                detail=str(error),
                type_=TYPE_BASE + "partner-not-covering",
                errors=[{"field": "partner_id", "message": str(error), "code": "not_covered"}],
            ) from None
        except service.DuplicateOpenReferral:
            raise Problem(
                409,
                "Already referred",
                detail="This need of the case is already referred to this partner (open).",
                type_=TYPE_BASE + "duplicate-referral",
            ) from None
        await _audit(svc, session, decision, request, [row], action="refer")
        entries = await service.history(session, row["id"])
    set_etag(response, row["version"])
    return _view(principal, row, partner["name"], history=entries)


@router.get("", response_model=ReferralPage, responses=AUTH_RESPONSES)
async def list_referrals(
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    status: Annotated[list[domain.Status] | None, Query(max_length=5)] = None,
    case_id: UUID | None = None,
    need: Annotated[partners_domain.Need | None, Query()] = None,
    overdue: bool | None = None,
    escalated: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ReferralPage:
    """A partner's queue (their organisation's only); the cell's view (`case_id`: one
    case's; `escalated=true`: those escalated to the ministry); a returnee's own."""
    decision = identity.policy.decide(principal, RESOURCE, "list")
    filters = service.ReferralFilters(
        status=status or (), case_id=case_id, need=need, overdue=overdue, escalated=escalated
    )
    async with svc.sessions() as session, session.begin():
        rows, total = await service.search(
            session,
            decision.where(service.SCOPE_COLUMNS),
            filters,
            now=now(),
            limit=limit,
            offset=offset,
        )
        names = await _partner_names(session, rows)
        await _audit(svc, session, decision, request, rows)
    following = offset + len(rows)
    return ReferralPage(
        items=[_view(principal, r, names.get(r["partner_id"], "")) for r in rows],
        total=total,
        next_offset=following if following < total else None,
    )


@router.get(
    "/{referral_id}", response_model=ReferralView, responses={**AUTH_RESPONSES, **NOT_FOUND}
)
async def get_referral(
    referral_id: UUID,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
) -> ReferralView:
    """A referral with its history (staff)."""
    decision = identity.policy.decide(principal, RESOURCE, "read")
    async with svc.sessions() as session, session.begin():
        row = await service.load(session, referral_id, decision.where(service.SCOPE_COLUMNS))
        if row is None:
            raise not_found("referral")
        entries = await service.history(session, referral_id)
        names = await _partner_names(session, [row])
        await _audit(svc, session, decision, request, [row])
    set_etag(response, row["version"])
    return _view(principal, row, names.get(row["partner_id"], ""), history=entries)


@router.post(
    "/{referral_id}/transitions",
    response_model=ReferralView,
    responses={
        **AUTH_RESPONSES,
        **NOT_FOUND,
        **CONFLICT,
        422: {"description": "A reason is required (problem details)"},
        **PRECONDITION_RESPONSES,
    },
)
async def transition_referral(
    referral_id: UUID,
    body: TransitionRequest,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> ReferralView:
    """The partner acknowledges, then completes (an optional report) or refuses (a
    reason); the cell cancels an open referral (a reason). Not possible from the status,
    or not for the caller's side: 409 naming what is."""
    partner_side = principal.has(Role.PARTNER_CASEWORKER)
    decision = identity.policy.decide(principal, RESOURCE, "respond" if partner_side else "manage")
    side: domain.Side = "partner" if partner_side else "cell"
    expected = expected_version(if_match)
    async with svc.sessions() as session, session.begin():
        row = await service.load(
            session, referral_id, decision.where(service.SCOPE_COLUMNS), lock=True
        )
        if row is None:
            raise not_found("referral")
        if expected is not None and expected != row["version"]:
            raise version_conflict(row["version"])
        try:
            changed = await service.apply_transition(
                session,
                svc.outbox,
                row,
                action=body.action,
                actor=service.Actor(principal.subject, side),
                reason=body.reason,
                now=now(),
            )
        except domain.IllegalTransition as error:
            raise Problem(
                409,
                "Transition not allowed",
                detail=str(error),
                type_=TYPE_BASE + "transition-not-allowed",
                status_now=error.status,
                allowed=error.allowed,
            ) from None
        except domain.ReasonRequired as error:
            raise invalid(
                "A reason is required",
                [{"field": "reason", "message": str(error), "code": "missing"}],
            ) from None
        await _audit(svc, session, decision, request, [changed], action=body.action)
        entries = await service.history(session, referral_id)
        names = await _partner_names(session, [changed])
    set_etag(response, changed["version"])
    return _view(principal, changed, names.get(changed["partner_id"], ""), history=entries)
