"""HTTP interface of the project holders' platform (`/projects`)."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from diaspora_identity.audit import AccessContext
from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_service.conditional import (
    PRECONDITION_RESPONSES,
    IfMatch,
    expected_version,
    set_etag,
    version_conflict,
)
from diaspora_service.problems import Problem
from diaspora_service.text import MultiLine, SingleLine
from matching.deps import ServiceDep
from matching.projects import service
from matching.projects.domain import Currency, InvalidPlace, PartnerKind, Sector, Stage, place

router = APIRouter(prefix="/projects", tags=["projects"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such project within your scope"}
}
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Amount = Annotated[Decimal, Field(ge=0, le=Decimal("1e13"), max_digits=16, decimal_places=2)]


def _email(value: str | None) -> str | None:
    if value is None:
        return None
    if not _EMAIL.fullmatch(value):
        raise ValueError("not an email address")
    return value.lower()


def _phone(value: str | None) -> str | None:
    if value is None:
        return None
    compact = re.sub(r"[\s().-]", "", value)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not _PHONE.fullmatch(compact):
        raise ValueError("international form expected, e.g. +22890123456")
    return compact


class ProjectFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: SingleLine = Field(
        min_length=3, max_length=200, examples=["Unité de transformation de soja"]
    )
    sector: Sector
    region: SingleLine = Field(
        min_length=2, max_length=40, description="ISO 3166-2:TG code or name", examples=["TG-P"]
    )
    prefecture: SingleLine | None = Field(
        None, max_length=60, description="A prefecture of that region", examples=["Ogou"]
    )
    amount_sought: Amount = Field(examples=["25000000"])
    currency: Currency = "XOF"
    stage: Stage
    partners_wanted: list[PartnerKind] = Field(default_factory=list, max_length=7)
    description: MultiLine = Field("", max_length=8000)
    contact_name: SingleLine = Field(min_length=1, max_length=200)
    contact_email: SingleLine | None = Field(None, max_length=254)
    contact_phone: SingleLine | None = Field(None, max_length=32)
    share_contact: bool = Field(
        False,
        description="Show your contact to partners who read the project (your consent). "
        "Without it, partners reach you by expressing interest; you are told and reply.",
    )

    @field_validator("contact_email")
    @classmethod
    def _check_email(cls, value: str | None) -> str | None:
        return _email(value)

    @field_validator("contact_phone")
    @classmethod
    def _check_phone(cls, value: str | None) -> str | None:
        return _phone(value)

    @model_validator(mode="after")
    def _reachable_and_in_togo(self) -> ProjectFields:
        if self.contact_email is None and self.contact_phone is None:
            raise ValueError("give a contact email or phone")
        try:
            self.region, self.prefecture = place(self.region, self.prefecture)
        except InvalidPlace as error:
            raise ValueError(str(error)) from None
        self.partners_wanted = sorted(set(self.partners_wanted))
        return self


class ProjectChanges(BaseModel):
    """The fields to change; the others stay as they are."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: SingleLine | None = Field(None, min_length=3, max_length=200)
    sector: Sector | None = None
    region: SingleLine | None = Field(None, min_length=2, max_length=40)
    prefecture: SingleLine | None = Field(None, max_length=60)
    amount_sought: Amount | None = None
    currency: Currency | None = None
    stage: Stage | None = None
    partners_wanted: list[PartnerKind] | None = Field(None, max_length=7)
    description: MultiLine | None = Field(None, max_length=8000)
    contact_name: SingleLine | None = Field(None, min_length=1, max_length=200)
    contact_email: SingleLine | None = Field(None, max_length=254)
    contact_phone: SingleLine | None = Field(None, max_length=32)
    share_contact: bool | None = None

    @field_validator("contact_email")
    @classmethod
    def _check_email(cls, value: str | None) -> str | None:
        return _email(value)

    @field_validator("contact_phone")
    @classmethod
    def _check_phone(cls, value: str | None) -> str | None:
        return _phone(value)


class ProjectView(BaseModel):
    """A project as the caller may see it: fields the policy withholds are absent."""

    id: UUID
    holder_id: UUID | None = Field(None, description="The holder's member id (not for partners).")
    title: str
    sector: str
    region: str
    prefecture: str | None = None
    amount_sought: Decimal
    currency: str
    stage: str
    partners_wanted: list[str]
    description: str
    contact_name: str | None = None
    contact_email: str | None = None
    contact_phone: str | None = None
    share_contact: bool
    status: str
    submitted_at: datetime
    updated_at: datetime
    revision: int


class ProjectPage(BaseModel):
    items: list[ProjectView]
    next_offset: int | None = Field(None, description="Offset of the next page, if any.")


class InterestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    message: MultiLine | None = Field(
        None, max_length=2000, description="Your message to the holder."
    )


class InterestView(BaseModel):
    id: UUID
    project_id: UUID
    organisation: str
    partner_org: str | None = None
    actor_role: str
    actor_subject: str | None = None
    actor_name: str | None = None
    actor_email: str | None = None
    message: str | None = None
    expressed_at: datetime


class InterestPage(BaseModel):
    items: list[InterestView]
    next_offset: int | None = None


def _not_a_member() -> Problem:
    return Problem(
        403,
        "Not registered",
        detail="Your token carries no registry member id: register with the registry first.",
    )


@router.post(
    "",
    status_code=201,
    response_model=ProjectView,
    response_model_exclude_unset=True,
    responses={**AUTH_RESPONSES, 200: {"description": "Repeated request: the first project"}},
)
async def submit(
    body: ProjectFields,
    svc: ServiceDep,
    principal: CurrentPrincipal,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    """Submit a project to the project holders' platform (a registered member)."""
    decision = svc.identity.policy.decide(principal, "project", "create")
    try:
        item, created = await service.submit_project(
            sessions=svc.sessions,
            outbox=svc.outbox,
            decision=decision,
            command=service.SubmitProject(**body.model_dump(), idempotency_key=idempotency_key),
        )
    except service.NotAMember:
        raise _not_a_member() from None
    except service.IdempotencyConflict:
        raise Problem(
            422,
            "Idempotency-Key already used",
            detail="This Idempotency-Key was used for a different request; use a new key.",
        ) from None
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/projects/{item['id']}"
    set_etag(response, item["revision"])
    return item


@router.get(
    "", response_model=ProjectPage, response_model_exclude_unset=True, responses=AUTH_RESPONSES
)
async def search(
    svc: ServiceDep,
    principal: CurrentPrincipal,
    request: Request,
    sector: Sector | None = None,
    region: Annotated[SingleLine | None, Query(max_length=40)] = None,
    prefecture: Annotated[SingleLine | None, Query(max_length=60)] = None,
    stage: Stage | None = None,
    amount_min: Annotated[Decimal | None, Query(ge=0)] = None,
    amount_max: Annotated[Decimal | None, Query(ge=0)] = None,
    amount_currency: Annotated[
        Currency, Query(description="Currency of amount_min/max (1 EUR = 655.957 XOF)")
    ] = "XOF",
    q: Annotated[
        SingleLine | None, Query(min_length=2, max_length=200, description="Words")
    ] = None,
    include_withdrawn: bool = False,
    offset: Offset = 0,
    limit: Limit = 50,
) -> ProjectPage:
    """Open projects within your scope, filtered; with `q`, best match first, else newest."""
    decision = svc.identity.policy.decide(principal, "project", "search")
    region_code: str | None = None
    slug: str | None = None
    if region is not None or prefecture is not None:
        try:
            region_code, slug = place(region, prefecture)
        except InvalidPlace as error:
            raise Problem(422, "Unknown place", detail=str(error)) from None
    if amount_min is not None and amount_max is not None and amount_min > amount_max:
        raise Problem(422, "Invalid amount range", detail="amount_min is above amount_max.")
    items = await service.find_projects(
        sessions=svc.sessions,
        audit=svc.audit,
        decision=decision,
        context=AccessContext.of(request),
        query=service.ProjectQuery(
            sector=sector,
            region=region_code,
            prefecture=slug,
            stage=stage,
            amount_min_xof=None
            if amount_min is None
            else service.to_xof(amount_min, amount_currency),
            amount_max_xof=None
            if amount_max is None
            else service.to_xof(amount_max, amount_currency),
            text=q,
            include_withdrawn=include_withdrawn,
            offset=offset,
            limit=limit + 1,
        ),
    )
    more = len(items) > limit
    return ProjectPage(
        items=[ProjectView(**i) for i in items[:limit]],
        next_offset=offset + limit if more else None,
    )


@router.get(
    "/{project_id}",
    response_model=ProjectView,
    response_model_exclude_unset=True,
    responses={**AUTH_RESPONSES, **NOT_FOUND},
)
async def read(
    project_id: UUID,
    svc: ServiceDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """One project (withdrawn ones too, for those who may read it)."""
    decision = svc.identity.policy.decide(principal, "project", "read")
    found = await service.find_projects(
        sessions=svc.sessions,
        audit=svc.audit,
        decision=decision,
        context=AccessContext.of(request),
        query=service.ProjectQuery(project_id=project_id, limit=1),
    )
    if not found:
        raise Problem(404, "Project not found")
    set_etag(response, found[0]["revision"])
    return found[0]


@router.patch(
    "/{project_id}",
    response_model=ProjectView,
    response_model_exclude_unset=True,
    responses={
        **AUTH_RESPONSES,
        **NOT_FOUND,
        409: {"description": "The project was withdrawn"},
        **PRECONDITION_RESPONSES,
    },
)
async def change(
    project_id: UUID,
    body: ProjectChanges,
    svc: ServiceDep,
    principal: CurrentPrincipal,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Change your project (send `If-Match` with its ETag to refuse lost updates)."""
    decision = svc.identity.policy.decide(principal, "project", "update")
    changes = body.model_dump(exclude_unset=True)
    for name in ("title", "sector", "amount_sought", "currency", "stage", "contact_name"):
        if name in changes and changes[name] is None:
            raise Problem(422, "Invalid change", detail=f"{name} cannot be removed.")
    if "partners_wanted" in changes:
        changes["partners_wanted"] = sorted(set(changes["partners_wanted"] or []))
    try:
        item = await service.update_project(
            sessions=svc.sessions,
            outbox=svc.outbox,
            decision=decision,
            project_id=project_id,
            changes=changes,
            if_match=expected_version(if_match),
        )
    except service.ProjectNotFound:
        raise Problem(404, "Project not found") from None
    except service.ProjectClosed:
        raise Problem(
            409, "Project withdrawn", detail="A withdrawn project cannot change."
        ) from None
    except service.RevisionMismatch as error:
        raise version_conflict(error.current) from None
    except (InvalidPlace, service.Unreachable) as error:
        raise Problem(422, "Invalid change", detail=str(error)) from None
    set_etag(response, item["revision"])
    return item


@router.post(
    "/{project_id}/withdraw",
    response_model=ProjectView,
    response_model_exclude_unset=True,
    responses={**AUTH_RESPONSES, **NOT_FOUND},
)
async def withdraw(
    project_id: UUID, svc: ServiceDep, principal: CurrentPrincipal, response: Response
) -> dict[str, Any]:
    """Take your project off the platform (partners no longer find it)."""
    decision = svc.identity.policy.decide(principal, "project", "withdraw")
    try:
        item = await service.withdraw_project(
            sessions=svc.sessions, outbox=svc.outbox, decision=decision, project_id=project_id
        )
    except service.ProjectNotFound:
        raise Problem(404, "Project not found") from None
    set_etag(response, item["revision"])
    return item


@router.post(
    "/{project_id}/interest",
    status_code=201,
    response_model=InterestView,
    response_model_exclude_unset=True,
    responses={
        **AUTH_RESPONSES,
        **NOT_FOUND,
        200: {"description": "You had already expressed interest: that expression"},
        409: {"description": "The project was withdrawn"},
    },
)
async def express_interest(
    project_id: UUID,
    body: InterestRequest,
    svc: ServiceDep,
    principal: CurrentPrincipal,
    response: Response,
) -> dict[str, Any]:
    """Tell the holder you are interested in their project (once per project)."""
    decision = svc.identity.policy.decide(principal, "project", "express_interest")
    read_decision = svc.identity.policy.decide(principal, "project", "read")
    try:
        item, created = await service.express_interest(
            sessions=svc.sessions,
            outbox=svc.outbox,
            read=read_decision,
            decision=decision,
            project_id=project_id,
            message=body.message or None,
        )
    except service.ProjectNotFound:
        raise Problem(404, "Project not found") from None
    except service.ProjectClosed:
        raise Problem(409, "Project withdrawn", detail="This project is no longer open.") from None
    if not created:
        response.status_code = 200
    return item


@router.get(
    "/{project_id}/interest",
    response_model=InterestPage,
    response_model_exclude_unset=True,
    responses={**AUTH_RESPONSES, **NOT_FOUND},
)
async def interest(
    project_id: UUID,
    svc: ServiceDep,
    principal: CurrentPrincipal,
    offset: Offset = 0,
    limit: Limit = 50,
) -> InterestPage:
    """Who is interested in a project: all of them for its holder and the ministry,
    your organisation's for a partner."""
    decision = svc.identity.policy.decide(principal, "project_interest", "list")
    read_decision = svc.identity.policy.decide(principal, "project", "read")
    try:
        items = await service.list_interests(
            sessions=svc.sessions,
            read=read_decision,
            decision=decision,
            project_id=project_id,
            offset=offset,
            limit=limit + 1,
        )
    except service.ProjectNotFound:
        raise Problem(404, "Project not found") from None
    more = len(items) > limit
    return InterestPage(
        items=[InterestView(**i) for i in items[:limit]],
        next_offset=offset + limit if more else None,
    )
