"""HTTP interface of difficulty reports (`/reports`).

A citizen reports an administrative difficulty (category of the ministry's list,
country where it happened, free text, attachments as references); a focal point
(embassy_officer) may file on a person's behalf, recording their consent. The report
goes to the focal points of the embassy covering the country (jurisdictions table);
for officers of any other embassy it does not exist (404). Messages go both ways; the
staff moves the status along; the ministry's coordinators see every report, overdue
and escalated ones included. Staff reads and changes are audited (record = the
reporter). Counts by country, category and month feed the observatory, small cells
suppressed (diaspora_service.suppression, the registry statistics' rule).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from consular.deps import IdentityDep, ServiceDep
from consular.problems import invalid, not_found
from consular.reports import domain, service
from consular.reports.schemas import (
    CATEGORY_CODE,
    Attachment,
    CategoryEdit,
    CategoryList,
    CategoryView,
    ConsentView,
    CountCell,
    CountTable,
    Dimension,
    HistoryEntry,
    Labels,
    MessageView,
    NewMessage,
    NewReport,
    ReportPage,
    ReportView,
    TransitionRequest,
)
from diaspora_identity.audit import AccessContext
from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal, authenticate
from diaspora_identity.jurisdictions import Jurisdictions
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
from diaspora_service.suppression import DEFAULT_THRESHOLD, hidden_cells

router = APIRouter(prefix="/reports", tags=["reports"])

RESOURCE = "consular_report"
CATEGORY_RESOURCE = "consular_report_category"
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such report"}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "Not possible from the current status; `allowed` names what is"}
}
VIEW_FIELDS = sorted(ReportView.model_fields)
CategoryCode = Annotated[str, Path(pattern=CATEGORY_CODE, examples=["detention"])]
Month = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]

# Who calls the published counts without a token: the policy's `public` role.
ANONYMOUS = Principal(subject="anonymous", roles=frozenset({Role.PUBLIC}))


def now() -> datetime:
    return datetime.now(UTC)


async def caller(request: Request) -> Principal:
    """The verified caller, or the anonymous public when the request carries no token."""
    if not request.headers.get("authorization"):
        return ANONYMOUS
    return await authenticate(request)


Caller = Annotated[Principal, Depends(caller)]


# --- categories -----------------------------------------------------------------------


def _category_view(row: dict[str, Any]) -> CategoryView:
    return CategoryView(
        code=row["code"],
        labels=Labels(fr=row["label_fr"], en=row["label_en"]),
        active=row["active"],
        target_days=row["target_days"],
        position=row["position"],
        version=row["version"],
        updated_at=row["updated_at"],
    )


@router.get("/categories", response_model=CategoryList)
async def list_categories(
    svc: ServiceDep,
    include_inactive: Annotated[bool, Query(description="Also the retired ones")] = False,
) -> CategoryList:
    """The ministry's list of difficulty categories, in French and English. No token needed."""
    async with svc.sessions() as session:
        rows = await service.categories(session, include_inactive=include_inactive)
    return CategoryList(items=[_category_view(r) for r in rows])


@router.put(
    "/categories/{code}",
    response_model=CategoryView,
    responses={**AUTH_RESPONSES, **PRECONDITION_RESPONSES},
)
async def put_category(
    code: CategoryCode,
    body: CategoryEdit,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> CategoryView:
    """Add a category or publish a new version of one (labels, active, target days).
    Reports already filed keep their category. Audited (each version kept)."""
    decision = identity.policy.decide(principal, CATEGORY_RESOURCE, "update")
    expected = expected_version(if_match)
    async with svc.sessions() as session, session.begin():
        try:
            row, version_id = await service.publish_category(
                session,
                code,
                label_fr=body.labels.fr,
                label_en=body.labels.en,
                active=body.active,
                target_days=body.target_days,
                position=body.position,
                expected=expected,
                actor=principal.subject,
                now=now(),
            )
        except service.VersionConflict as error:
            raise version_conflict(error.current) from None
        await svc.audit.record(
            session,
            decision,
            AccessContext.of(request),
            [(version_id, sorted(CategoryEdit.model_fields))],
        )
    set_etag(response, row["version"])
    return _category_view(row)


# --- the observatory's counts -----------------------------------------------------------


@router.get(
    "/statistics",
    response_model=CountTable,
    responses={
        401: {"description": "Invalid bearer token (problem details); no token is allowed"},
        403: {"description": "Your roles do not allow this (e.g. exact counts)"},
        422: {"description": "Invalid parameter (problem details)"},
    },
)
async def report_counts(
    svc: ServiceDep,
    identity: IdentityDep,
    principal: Caller,
    response: Response,
    by: Annotated[list[Dimension] | None, Query(max_length=3)] = None,
    category: Annotated[str | None, Query(pattern=CATEGORY_CODE)] = None,
    country: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$")] = None,
    month_from: Month = None,
    month_to: Month = None,
    exact: Annotated[
        bool, Query(description="No suppression (roles granted `statistics_exact` only)")
    ] = False,
) -> CountTable:
    """Reports per country, category and/or month of filing (`by`, one to three of them),
    small cells suppressed: the same rule as the registry's statistics (a cell under the
    threshold is hidden, and the smallest others with it so that no hidden cell can be
    recovered from the total). Without a token: the published figures."""
    identity.policy.decide(principal, RESOURCE, "statistics_exact" if exact else "statistics")
    dimensions: list[Dimension] = list(dict.fromkeys(by or ["country"]))
    async with svc.sessions() as session:
        table = await service.counts(
            session,
            dimensions,
            category_code=category,
            country=country,
            month_from=month_from,
            month_to=month_to,
        )
    threshold = DEFAULT_THRESHOLD
    total = sum(table.values())
    keys = {"|".join(k): n for k, n in table.items()}
    hidden = set() if exact else hidden_cells(keys, threshold=threshold, total=total, additive=True)
    total_shown = exact or total >= threshold
    cells = [
        CountCell(
            **dict(zip(dimensions, key, strict=True)),
            reports=None if "|".join(key) in hidden else n,
            suppressed="|".join(key) in hidden,
        )
        for key, n in sorted(table.items())
    ]
    public = not exact and principal is ANONYMOUS
    response.headers["Cache-Control"] = "public, max-age=60" if public else "private, no-store"
    response.headers["Vary"] = "Authorization"
    return CountTable(
        by=dimensions,
        exact=exact,
        threshold=threshold,
        total=total if total_shown else None,
        cells=cells,
    )


# --- reports ------------------------------------------------------------------------------


def _where(decision: Decision) -> Any:
    return decision.where(service.SCOPE_COLUMNS)


def _is_reporter(principal: Principal, row: dict[str, Any]) -> bool:
    return (
        row["reporter_subject"] is not None and row["reporter_subject"] == principal.subject
    ) or (principal.member_id is not None and row["reporter_id"] == principal.member_id)


def _side(principal: Principal, row: dict[str, Any]) -> domain.Side | None:
    if _is_reporter(principal, row):
        return "reporter"
    if principal.has(Role.MINISTRY_COORDINATOR) or (
        principal.has(Role.EMBASSY_OFFICER) and row["embassy_id"] in principal.embassies
    ):
        return "staff"
    return None


def _view(
    principal: Principal,
    row: dict[str, Any],
    *,
    messages: list[dict[str, Any]] | None = None,
    history: list[dict[str, Any]] | None = None,
) -> ReportView:
    side = _side(principal, row)
    staff = principal.is_staff and side != "reporter"
    return ReportView(
        id=row["id"],
        reporter_id=row["reporter_id"],
        category=row["category"],
        country=row["country"],
        embassy_id=row["embassy_id"],
        description=row["description"],
        attachments=[Attachment.model_validate(a) for a in row["attachments"]],
        status=row["status"],
        filed_on_behalf=row["consent_method"] is not None,
        filed_by_subject=row["filed_by_subject"] if staff else None,
        consent=(
            ConsentView(method=row["consent_method"], given_at=row["consent_given_at"])
            if row["consent_method"] is not None
            else None
        ),
        created_at=row["created_at"],
        due_at=row["due_at"],
        overdue=domain.is_overdue(row["status"], row["due_at"], now()),
        escalated_at=row["escalated_at"],
        resolved_at=row["resolved_at"],
        version=row["version"],
        allowed_actions=domain.allowed_actions(row["status"], side) if side else [],
        messages=(
            [
                MessageView(
                    author_side=m["author_side"],
                    author_subject=m["author_subject"] if staff else None,
                    body=m["body"],
                    at=m["at"],
                )
                for m in messages
            ]
            if messages is not None
            else None
        ),
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


async def _audit(
    svc: Any,
    session: Any,
    decision: Decision,
    request: Request,
    rows: list[dict[str, Any]],
    *,
    action: str | None = None,
) -> None:
    """Staff reads and changes of reports (the reporter's own are not audited)."""
    principal = decision.principal
    accesses = [
        (row["reporter_id"] or row["id"], VIEW_FIELDS)
        for row in rows
        if not _is_reporter(principal, row)
    ]
    if principal.is_staff and accesses:
        await svc.audit.record(
            session, decision, AccessContext.of(request), accesses, action=action
        )


def _field_error(field: str, message: str, code: str = "invalid") -> Problem:
    return invalid("Invalid report", [{"field": field, "message": message, "code": code}])


@router.post(
    "",
    status_code=201,
    response_model=ReportView,
    responses={**AUTH_RESPONSES, 422: {"description": "Invalid report (problem details)"}},
)
async def file_report(
    body: NewReport,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
) -> ReportView:
    """Report a difficulty (a citizen, their own), or file one on a person's behalf (a
    focal point of the embassy covering the country, with the person's consent: how and
    when it was given). Routed to the embassy covering the country where it happened."""
    decision = identity.policy.decide(principal, RESOURCE, "create")
    embassy_id = Jurisdictions.load(svc.settings.jurisdictions_file).embassy_for(body.country)
    behalf = body.on_behalf_of
    if behalf is not None:
        if not principal.has(Role.EMBASSY_OFFICER):
            raise _field_error("on_behalf_of", "only a focal point files on someone's behalf")
        if embassy_id not in principal.embassies:
            raise _field_error(
                "country",
                f"is covered by {embassy_id}, not by your embassy",
                "outside_jurisdiction",
            )
        filing = service.Filing(
            reporter_id=behalf.member_id,
            reporter_subject=None,
            filed_by_subject=principal.subject,
            filed_by_role=Role.EMBASSY_OFFICER.value,
            consent_method=behalf.consent.method,
            consent_given_at=behalf.consent.given_at,
        )
    else:
        if not principal.has(Role.CITIZEN):
            raise _field_error(
                "on_behalf_of",
                "a focal point files for a person: give their member id and consent",
                "missing",
            )
        filing = service.Filing(
            reporter_id=principal.member_id,
            reporter_subject=principal.subject,
            filed_by_subject=principal.subject,
            filed_by_role=Role.CITIZEN.value,
        )
    async with svc.sessions() as session, session.begin():
        try:
            row = await service.file_report(
                session,
                svc.outbox,
                filing,
                category_code=body.category,
                country=body.country,
                embassy_id=embassy_id,
                description=body.description,
                attachments=[a.model_dump() for a in body.attachments],
                now=now(),
            )
        except service.UnknownCategory:
            raise _field_error("category", "is not in the list of categories", "unknown") from None
        await _audit(svc, session, decision, request, [row], action="file")
        entries = await service.history(session, row["id"])
    set_etag(response, row["version"])
    return _view(principal, row, messages=[], history=entries)


@router.get("", response_model=ReportPage, responses=AUTH_RESPONSES)
async def list_reports(
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    status: Annotated[list[domain.Status] | None, Query(max_length=5)] = None,
    category: Annotated[str | None, Query(pattern=CATEGORY_CODE)] = None,
    country: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$")] = None,
    overdue: bool | None = None,
    escalated: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ReportPage:
    """A citizen's own reports; a focal point's queue (their embassies); every report for
    the ministry's coordinators (`escalated=true`: those escalated to them). Oldest due
    first."""
    decision = identity.policy.decide(principal, RESOURCE, "list")
    filters = service.ReportFilters(
        status=status or (),
        category=category,
        country=country,
        overdue=overdue,
        escalated=escalated,
    )
    async with svc.sessions() as session, session.begin():
        rows, total = await service.search(
            session, _where(decision), filters, now=now(), limit=limit, offset=offset
        )
        await _audit(svc, session, decision, request, rows)
    following = offset + len(rows)
    return ReportPage(
        items=[_view(principal, r) for r in rows],
        total=total,
        next_offset=following if following < total else None,
    )


@router.get("/{report_id}", response_model=ReportView, responses={**AUTH_RESPONSES, **NOT_FOUND})
async def get_report(
    report_id: UUID,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
) -> ReportView:
    """A report with its messages and history."""
    decision = identity.policy.decide(principal, RESOURCE, "read")
    async with svc.sessions() as session, session.begin():
        row = await service.load(session, report_id, _where(decision))
        if row is None:
            raise not_found("report")
        notes = await service.messages(session, report_id)
        entries = await service.history(session, report_id)
        await _audit(svc, session, decision, request, [row])
    set_etag(response, row["version"])
    return _view(principal, row, messages=notes, history=entries)


def _acting(identity: Any, principal: Principal) -> tuple[Decision, domain.Side]:
    """The reporter follows their own (policy action ``follow``); the staff handles."""
    side: domain.Side = "staff" if principal.is_staff else "reporter"
    action = "handle" if side == "staff" else "follow"
    decision: Decision = identity.policy.decide(principal, RESOURCE, action)
    return decision, side


@router.post(
    "/{report_id}/messages",
    status_code=201,
    response_model=ReportView,
    responses={**AUTH_RESPONSES, **NOT_FOUND},
)
async def post_message(
    report_id: UUID,
    body: NewMessage,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
) -> ReportView:
    """A message from the reporter to the focal point, or back. The reporter's answer to
    a request for information puts the report back in progress."""
    decision, side = _acting(identity, principal)
    async with svc.sessions() as session, session.begin():
        row = await service.load(session, report_id, _where(decision), lock=True)
        if row is None:
            raise not_found("report")
        if row["status"] == "closed":
            raise Problem(
                409,
                "The report is closed",
                detail="A closed report takes no more messages.",
                type_=TYPE_BASE + "report-closed",
                status_now="closed",
                allowed=[],
            )
        changed = await service.post_message(
            session,
            svc.outbox,
            row,
            actor=service.Actor(principal.subject, side),
            body=body.body,
            now=now(),
        )
        await _audit(svc, session, decision, request, [changed], action="message")
        notes = await service.messages(session, report_id)
        entries = await service.history(session, report_id)
    set_etag(response, changed["version"])
    return _view(principal, changed, messages=notes, history=entries)


@router.post(
    "/{report_id}/transitions",
    response_model=ReportView,
    responses={
        **AUTH_RESPONSES,
        **NOT_FOUND,
        **CONFLICT,
        422: {"description": "A reason is required (problem details)"},
        **PRECONDITION_RESPONSES,
    },
)
async def transition_report(
    report_id: UUID,
    body: TransitionRequest,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> ReportView:
    """Move the report along: the staff starts it, asks the reporter for information,
    resumes, resolves (with a note), reopens, closes; the reporter withdraws it, reopens
    or closes it once resolved. Not possible from the status: 409 naming what is."""
    decision, side = _acting(identity, principal)
    expected = expected_version(if_match)
    async with svc.sessions() as session, session.begin():
        row = await service.load(session, report_id, _where(decision), lock=True)
        if row is None:
            raise not_found("report")
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
        notes = await service.messages(session, report_id)
        entries = await service.history(session, report_id)
    set_etag(response, changed["version"])
    return _view(principal, changed, messages=notes, history=entries)
