"""HTTP interface of applications (`/applications`).

A registered citizen (token `member_id`) drafts an application for a service type of
the catalogue, submits it (eligibility and the form checked then), answers requests
for information and may withdraw it; they see its status and history. Officers of the
processing embassy work their queue (filters, assignment, SLA) and move applications
along; an application of another embassy does not exist for them (404). Coordinators
see every application, overdue and escalated ones included. Every staff read and change
is audited (record = the applicant).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response

from consular.applications import domain, service
from consular.applications.schemas import (
    ApplicantSummary,
    ApplicationPage,
    ApplicationView,
    AssignmentRequest,
    HistoryEntry,
    NewApplication,
    TransitionRequest,
)
from consular.deps import IdentityDep, ServiceDep
from consular.problems import invalid, not_found
from consular.resources import TransitionBlocked
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

router = APIRouter(prefix="/applications", tags=["applications"])

RESOURCE = "consular_application"
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such application"}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "Not possible from the current status; `allowed` names what is"}
}
UNPROCESSABLE: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "Answers that do not fit the form, an applicant not eligible, or "
        "(submit, resubmit) required documents not uploaded (`missing` names their codes)"
    }
}
VIEW_FIELDS = sorted(ApplicationView.model_fields)


def now() -> datetime:
    return datetime.now(UTC)


def _where(decision: Decision, principal: Principal) -> Any:
    return service.visible(
        decision.where(service.SCOPE_COLUMNS), principal.member_id, principal.subject
    )


def _side(principal: Principal, row: dict[str, Any]) -> domain.Actor | None:
    if row["applicant_subject"] == principal.subject or (
        principal.member_id is not None and row["applicant_id"] == principal.member_id
    ):
        return "applicant"
    if principal.has(Role.EMBASSY_OFFICER) and row["embassy_id"] in principal.embassies:
        return "embassy_officer"
    return None


def _view(
    principal: Principal,
    row: dict[str, Any],
    *,
    history: list[dict[str, Any]] | None = None,
    applicant: dict[str, Any] | None = None,
) -> ApplicationView:
    side = _side(principal, row)
    staff = principal.is_staff and side != "applicant"
    return ApplicationView(
        id=row["id"],
        applicant_id=row["applicant_id"],
        applicant=(
            ApplicantSummary(
                given_name=applicant["given_name"],
                family_name=applicant["family_name"],
                email=applicant["email"],
                preferred_language=applicant["preferred_language"],
                identity_verified=applicant["identity_level"] is not None,
            )
            if staff and applicant is not None
            else None
        ),
        service_type=row["service_type"],
        catalogue_version=row["catalogue_version"],
        embassy_id=row["embassy_id"],
        status=row["status"],
        answers=row["answers"],
        assigned_to=row["assigned_to"],
        created_at=row["created_at"],
        submitted_at=row["submitted_at"],
        due_at=row["due_at"],
        overdue=domain.is_overdue(row["status"], row["due_at"], now()),
        escalated_at=row["escalated_at"],
        decided_at=row["decided_at"],
        reference=row["reference"],
        version=row["version"],
        allowed_actions=domain.allowed_actions(row["status"], side) if side else [],
        history=(
            [
                HistoryEntry(
                    action=h["action"],
                    from_status=h["from_status"],
                    to_status=h["to_status"],
                    reason=h["reason"],
                    actor_role=h["actor_role"],
                    actor_subject=h["actor_subject"] if staff else None,
                    at=h["at"],
                )
                for h in history
            ]
            if history is not None
            else None
        ),
    )


def _invalid_answers(error: service.InvalidAnswers) -> Problem:
    return invalid("The answers do not fit the form", [e.as_dict() for e in error.errors])


def _not_eligible(error: service.NotEligible) -> Problem:
    return Problem(
        422,
        "Not eligible for this service",
        detail=error.refusal.message,
        type_=TYPE_BASE + "not-eligible",
        reason=error.refusal.code,
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
    """Staff reads and changes of applications (the applicant's own are not audited);
    an embassy officer is remembered as one of their embassies' officers (assignment)."""
    principal = decision.principal
    if principal.has(Role.EMBASSY_OFFICER):
        await service.note_officer(session, principal.subject, sorted(principal.embassies), now())
    # The record is the applicant (their access log), or the application of a visitor.
    accesses = [
        (row["applicant_id"] or row["id"], VIEW_FIELDS)
        for row in rows
        if _side(principal, row) != "applicant"
    ]
    if principal.is_staff and accesses:
        await svc.audit.record(
            session, decision, AccessContext.of(request), accesses, action=action
        )


@router.post(
    "",
    status_code=201,
    response_model=ApplicationView,
    responses={
        **AUTH_RESPONSES,
        **UNPROCESSABLE,
        200: {"description": "Repeated request (same Idempotency-Key): the first application"},
        409: {"description": "Idempotency-Key already used for a different request"},
    },
)
async def create_application(
    body: NewApplication,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ApplicationView:
    """Start a draft application for a service type (its current catalogue version). A
    registry member applies as such (token `member_id`); anyone else (a foreign visitor)
    only for a service open to all (eligibility `none`: the e-visa)."""
    identity.policy.decide(principal, RESOURCE, "create")
    async with svc.sessions() as session, session.begin():
        try:
            row, created = await service.create_draft(
                session,
                applicant_id=principal.member_id,
                subject=principal.subject,
                service_type=body.service_type,
                answers=body.answers,
                now=now(),
                idempotency_key=idempotency_key,
                contact=service.visitor_contact(principal.claims),
            )
        except service.UnknownServiceType:
            raise invalid(
                "Unknown service type",
                [
                    {
                        "field": "service_type",
                        "message": "is not in the catalogue",
                        "code": "unknown",
                    }
                ],
            ) from None
        except service.InvalidAnswers as error:
            raise _invalid_answers(error) from None
        except service.NotEligible as error:
            raise _not_eligible(error) from None
        except service.IdempotencyConflict:
            raise Problem(
                409,
                "Idempotency-Key already used",
                detail="This Idempotency-Key was used for a different request; use a new key.",
            ) from None
        entries = await service.history(session, row["id"])
    if not created:
        response.status_code = 200
    set_etag(response, row["version"])
    return _view(principal, row, history=entries)


@router.get("", response_model=ApplicationPage, responses=AUTH_RESPONSES)
async def list_applications(
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    status: Annotated[list[domain.Status] | None, Query(max_length=11)] = None,
    service_type: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z][a-z0-9_]*$")] = None,
    assigned: Annotated[
        str | None,
        Query(
            max_length=200,
            # A token subject: printable, no spaces or control characters.
            pattern=r"^[\x21-\x7e]+$",
            description='"me", "none", or an officer\'s subject',
        ),
    ] = None,
    overdue: bool | None = None,
    escalated: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ApplicationPage:
    """A citizen's own applications; an officer's queue (their embassies); every
    application for coordinators. Oldest due first."""
    decision = identity.policy.decide(principal, RESOURCE, "list")
    filters = service.QueueFilters(
        status=status or (),
        service_type=service_type,
        assigned=assigned,
        overdue=overdue,
        escalated=escalated,
    )
    async with svc.sessions() as session, session.begin():
        rows, total = await service.search(
            session,
            _where(decision, principal),
            filters,
            caller=principal.subject,
            now=now(),
            limit=limit,
            offset=offset,
        )
        applicants = (
            await service.applicant_views(session, [r["applicant_id"] for r in rows])
            if principal.is_staff
            else {}
        )
        await _audit(svc, session, decision, request, rows)
    following = offset + len(rows)
    return ApplicationPage(
        items=[_view(principal, r, applicant=applicants.get(r["applicant_id"])) for r in rows],
        total=total,
        next_offset=following if following < total else None,
    )


@router.get(
    "/{application_id}",
    response_model=ApplicationView,
    responses={**AUTH_RESPONSES, **NOT_FOUND},
)
async def get_application(
    application_id: UUID,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
) -> ApplicationView:
    """An application with its history (status, who did what, when and why)."""
    decision = identity.policy.decide(principal, RESOURCE, "read")
    async with svc.sessions() as session, session.begin():
        row = await service.load(session, application_id, _where(decision, principal))
        if row is None:
            raise not_found("application")
        entries = await service.history(session, application_id)
        applicant = (await service.applicant_views(session, [row["applicant_id"]])).get(
            row["applicant_id"]
        )
        await _audit(svc, session, decision, request, [row])
    set_etag(response, row["version"])
    return _view(principal, row, history=entries, applicant=applicant)


@router.post(
    "/{application_id}/transitions",
    response_model=ApplicationView,
    responses={
        **AUTH_RESPONSES,
        **NOT_FOUND,
        **CONFLICT,
        **UNPROCESSABLE,
        **PRECONDITION_RESPONSES,
    },
)
async def transition_application(
    application_id: UUID,
    body: TransitionRequest,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> ApplicationView:
    """Move the application along: the applicant submits, resubmits or withdraws; an
    officer of the processing embassy starts the review, requests information, approves,
    rejects, issues, marks collected. Not possible from the current status: 409 naming
    the actions that are."""
    side: domain.Actor = (
        "applicant" if body.action in domain.APPLICANT_ACTIONS else ("embassy_officer")
    )
    decision = identity.policy.decide(
        principal, RESOURCE, "apply" if side == "applicant" else "process"
    )
    expected = expected_version(if_match)
    async with svc.sessions() as session, session.begin():
        row = await service.load(session, application_id, _where(decision, principal), lock=True)
        if row is None:
            raise not_found("application")
        if expected is not None and expected != row["version"]:
            raise version_conflict(row["version"])
        try:
            changed = await service.apply_transition(
                session,
                svc.outbox,
                row,
                action=body.action,
                actor=service.Actor(subject=principal.subject, side=side),
                reason=body.reason,
                answers=body.answers,
                now=now(),
                on_issued=svc.on_issued,
                on_closed=svc.on_closed,
                on_transition=svc.on_transition,
            )
        except TransitionBlocked as error:
            raise Problem(
                409,
                error.title,
                detail=error.detail,
                type_=TYPE_BASE + error.problem_type,
                status_now=row["status"],
                **error.extra,
            ) from None
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
        except service.InvalidAnswers as error:
            raise _invalid_answers(error) from None
        except service.NotEligible as error:
            raise _not_eligible(error) from None
        except service.DocumentsMissing as error:
            raise Problem(
                422,
                "Required documents are missing",
                detail="Upload a document of each required kind first: " + ", ".join(error.missing),
                type_=TYPE_BASE + "documents-missing",
                missing=error.missing,
                errors=[
                    {"field": f"documents.{code}", "message": "is required", "code": "missing"}
                    for code in error.missing
                ],
            ) from None
        await _audit(svc, session, decision, request, [changed], action=body.action)
        entries = await service.history(session, application_id)
    set_etag(response, changed["version"])
    return _view(principal, changed, history=entries)


@router.put(
    "/{application_id}/assignment",
    response_model=ApplicationView,
    responses={
        **AUTH_RESPONSES,
        **NOT_FOUND,
        **PRECONDITION_RESPONSES,
        422: {"description": "The assignee is not an officer of the application's embassy"},
    },
)
async def assign_application(
    application_id: UUID,
    body: AssignmentRequest,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> ApplicationView:
    """Give the case to an officer (`"me"`: yourself), or to nobody (null)."""
    decision = identity.policy.decide(principal, RESOURCE, "assign")
    expected = expected_version(if_match)
    assignee = principal.subject if body.assignee == "me" else body.assignee
    async with svc.sessions() as session, session.begin():
        row = await service.load(session, application_id, _where(decision, principal), lock=True)
        if row is None:
            raise not_found("application")
        if expected is not None and expected != row["version"]:
            raise version_conflict(row["version"])
        # The assignee's token is not here: the caller themselves, or someone seen acting
        # as an officer of the application's embassy (the officers table).
        if (
            assignee is not None
            and assignee != principal.subject
            and not (
                row["embassy_id"] is not None
                and await service.is_known_officer(session, assignee, row["embassy_id"])
            )
        ):
            raise Problem(
                422,
                "Not an officer of this embassy",
                detail=(
                    f"{assignee!r} is not known as an officer of {row['embassy_id']}: a case "
                    "is assigned to yourself or to an officer of its embassy who has already "
                    "worked in the consular service."
                ),
                type_=TYPE_BASE + "assignee-not-an-officer",
                errors=[
                    {
                        "field": "assignee",
                        "message": "not an officer of the embassy",
                        "code": "invalid",
                    }
                ],
            )
        changed = await service.assign(
            session,
            row,
            assignee=assignee,
            actor=service.Actor(subject=principal.subject, side="embassy_officer"),
            actor_role=",".join(decision.roles),
            now=now(),
        )
        await _audit(svc, session, decision, request, [changed], action="assign")
        entries = await service.history(session, application_id)
    set_etag(response, changed["version"])
    return _view(principal, changed, history=entries)
