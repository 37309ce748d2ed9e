"""HTTP interface of national needs (`/needs`).

Coordinators of the ministry (and admins) post needs, change them and move them
along their lifecycle; everyone else the policy admits reads published needs
(drafts are the coordinators' own business).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from diaspora_events.contracts.matching import Currency, NeedStatus, NeedType, WorkMode
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
from matching.needs import service
from matching.needs.domain import IllegalTransition, InstitutionKind, InvalidNeed, SkillSought

router = APIRouter(prefix="/needs", tags=["needs"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such need"}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "Not possible in the need's current status (problem details)"}
}
Isco = Annotated[str, Field(pattern=r"^[0-9]{1,4}$", examples=["2211"])]
Language = Annotated[str, Field(pattern=r"^[A-Za-z]{2}$", examples=["fr"])]


class Skill(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    esco_uri: SingleLine | None = Field(
        None,
        max_length=300,
        examples=["http://data.europa.eu/esco/skill/5e8ac5a4-3b1f-4f53-b7e5-2c05a8e0f1b0"],
    )
    label: SingleLine = Field(
        "", max_length=200, description="Free text, or the ESCO label (filled in when empty)."
    )


class NeedFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: SingleLine = Field(min_length=3, max_length=200, examples=["Enseignant de chirurgie"])
    type: NeedType
    institution: SingleLine = Field(min_length=2, max_length=200, examples=["CHU Sylvanus Olympio"])
    institution_kind: InstitutionKind
    description: MultiLine = Field("", max_length=8000)
    occupations: list[Isco] = Field(
        default_factory=list, max_length=20, description="ISCO-08 codes, any level."
    )
    skills: list[Skill] = Field(default_factory=list, max_length=30)
    min_isced_level: int | None = Field(None, ge=0, le=8, description="ISCED 2011 level.")
    languages: list[Language] = Field(
        default_factory=list, max_length=10, description="ISO 639-1; every expert must speak all."
    )
    starts_on: date | None = None
    ends_on: date | None = None
    duration_days: int | None = Field(None, ge=1, le=3660)
    region: SingleLine = Field(
        min_length=2, max_length=40, description="ISO 3166-2:TG code or name."
    )
    prefecture: SingleLine | None = Field(None, max_length=60)
    work_mode: WorkMode = "on_site"
    experts_wanted: int = Field(1, ge=1, le=100)
    funding_amount: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    funding_currency: Currency | None = None
    funding_source: SingleLine | None = Field(None, max_length=300)


class NewNeed(NeedFields):
    publish: bool = Field(False, description="Open the need at once instead of a draft.")


class NeedChanges(BaseModel):
    """The fields to change; the others stay as they are."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: SingleLine | None = Field(None, min_length=3, max_length=200)
    type: NeedType | None = None
    institution: SingleLine | None = Field(None, min_length=2, max_length=200)
    institution_kind: InstitutionKind | None = None
    description: MultiLine | None = Field(None, max_length=8000)
    occupations: list[Isco] | None = Field(None, max_length=20)
    skills: list[Skill] | None = Field(None, max_length=30)
    min_isced_level: int | None = Field(None, ge=0, le=8)
    languages: list[Language] | None = Field(None, max_length=10)
    starts_on: date | None = None
    ends_on: date | None = None
    duration_days: int | None = Field(None, ge=1, le=3660)
    region: SingleLine | None = Field(None, min_length=2, max_length=40)
    prefecture: SingleLine | None = Field(None, max_length=60)
    work_mode: WorkMode | None = None
    experts_wanted: int | None = Field(None, ge=1, le=100)
    funding_amount: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=2)
    funding_currency: Currency | None = None
    funding_source: SingleLine | None = Field(None, max_length=300)


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    status: Literal["open", "matching", "proposals_sent", "filled", "cancelled"]
    reason: MultiLine | None = Field(None, max_length=500)


class NeedView(BaseModel):
    id: UUID
    title: str
    type: str
    institution: str
    institution_kind: str
    description: str
    occupations: list[str]
    skills: list[Skill]
    min_isced_level: int | None
    languages: list[str]
    starts_on: date | None
    ends_on: date | None
    duration_days: int | None
    region: str
    prefecture: str | None
    work_mode: str
    experts_wanted: int
    funding_amount: Decimal | None
    funding_currency: str | None
    funding_source: str | None
    status: NeedStatus
    close_reason: str | None
    created_by: str | None = Field(None, description="The coordinator (staff only).")
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    revision: int


class NeedPage(BaseModel):
    items: list[NeedView]
    total: int
    next_offset: int | None


def _view(need: dict[str, Any], staff: bool) -> dict[str, Any]:
    view = {k: v for k, v in need.items() if k in NeedView.model_fields}
    if not staff:
        view["created_by"] = None
    return view


def _invalid(error: InvalidNeed) -> Problem:
    return Problem(
        422,
        "The request is not valid",
        detail=error.message,
        type_="https://diaspora.gouv.tg/problems/validation",
        errors=[{"field": error.field, "message": error.message, "code": "reference_data"}],
    )


def _conflict(error: Exception, **extensions: Any) -> Problem:
    return Problem(409, "Conflict with the need's status", detail=str(error), **extensions)


def _command(fields: NeedFields) -> service.NeedCommand:
    values = fields.model_dump(exclude={"publish"})
    values["skills"] = [SkillSought(label=s.label, esco_uri=s.esco_uri) for s in fields.skills]
    return service.NeedCommand(**values)


@router.post(
    "",
    status_code=201,
    response_model=NeedView,
    responses={
        **AUTH_RESPONSES,
        200: {"description": "Repeated request (same Idempotency-Key): the first need"},
        409: {"description": "Idempotency-Key reused with a different body"},
    },
)
async def post_need(
    body: NewNeed,
    svc: ServiceDep,
    principal: CurrentPrincipal,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    """Post a national need (a draft, or open at once with `publish`)."""
    svc.identity.policy.decide(principal, "need", "create")
    try:
        async with svc.sessions() as session, session.begin():
            need, created = await service.post_need(
                session,
                svc.outbox,
                command=_command(body),
                created_by=principal.subject,
                publish=body.publish,
                idempotency_key=idempotency_key,
            )
    except InvalidNeed as error:
        raise _invalid(error) from None
    except service.IdempotencyConflict:
        raise Problem(
            409,
            "Idempotency-Key already used",
            detail="This Idempotency-Key was used for a different request; use a new key.",
        ) from None
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/needs/{need['id']}"
    set_etag(response, need["revision"])
    return _view(need, staff=True)


@router.get("", response_model=NeedPage, responses=AUTH_RESPONSES)
async def list_needs(
    svc: ServiceDep,
    principal: CurrentPrincipal,
    status: NeedStatus | None = None,
    type: NeedType | None = None,
    region: Annotated[SingleLine | None, Query(max_length=10)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> NeedPage:
    """National needs, newest first (drafts only for those who may change them)."""
    policy = svc.identity.policy
    policy.decide(principal, "need", "list")
    staff = policy.allowed(principal, "need", "update")
    query = service.listing(
        status=status,
        type_=type,
        region=region,
        published_only=not staff,
        limit=limit,
        offset=offset,
    )
    async with svc.sessions() as session:
        found = [dict(r) for r in (await session.execute(query)).mappings()]
    total = found[0]["total"] if found else 0
    return NeedPage(
        items=[NeedView.model_validate(_view(n, staff)) for n in found],
        total=total,
        next_offset=offset + limit if offset + limit < total else None,
    )


async def _readable(
    svc: ServiceDep, principal: CurrentPrincipal, need_id: UUID
) -> tuple[dict[str, Any], bool]:
    policy = svc.identity.policy
    policy.decide(principal, "need", "read")
    staff = policy.allowed(principal, "need", "update")
    async with svc.sessions() as session:
        try:
            need = await service.get_need(session, need_id)
        except service.NeedNotFound:
            raise Problem(404, "Need not found") from None
    if not staff and need["status"] == "draft":
        raise Problem(404, "Need not found")
    return need, staff


@router.get("/{need_id}", response_model=NeedView, responses={**AUTH_RESPONSES, **NOT_FOUND})
async def get_need(
    need_id: UUID, svc: ServiceDep, principal: CurrentPrincipal, response: Response
) -> dict[str, Any]:
    """One national need."""
    need, staff = await _readable(svc, principal, need_id)
    set_etag(response, need["revision"])
    return _view(need, staff)


@router.patch(
    "/{need_id}",
    response_model=NeedView,
    responses={**AUTH_RESPONSES, **NOT_FOUND, **CONFLICT, **PRECONDITION_RESPONSES},
)
async def change_need(
    need_id: UUID,
    body: NeedChanges,
    svc: ServiceDep,
    principal: CurrentPrincipal,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Change a need's details (draft, open or matching)."""
    svc.identity.policy.decide(principal, "need", "update")
    changes = body.model_dump(exclude_unset=True)
    if "skills" in changes:
        changes["skills"] = [{"esco_uri": s.esco_uri, "label": s.label} for s in body.skills or []]
    try:
        async with svc.sessions() as session, session.begin():
            need = await service.change_need(
                session,
                svc.outbox,
                need_id=need_id,
                changes=changes,
                expected_revision=expected_version(if_match),
            )
    except service.NeedNotFound:
        raise Problem(404, "Need not found") from None
    except InvalidNeed as error:
        raise _invalid(error) from None
    except service.NotEditable as error:
        raise _conflict(error, need_status=error.status) from None
    except service.RevisionMismatch as error:
        raise version_conflict(error.current) from None
    set_etag(response, need["revision"])
    return _view(need, staff=True)


@router.post(
    "/{need_id}/status",
    response_model=NeedView,
    responses={**AUTH_RESPONSES, **NOT_FOUND, **CONFLICT, **PRECONDITION_RESPONSES},
)
async def change_status(
    need_id: UUID,
    body: StatusChange,
    svc: ServiceDep,
    principal: CurrentPrincipal,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Move a need along its lifecycle: open, matching, proposals_sent, filled or cancelled."""
    svc.identity.policy.decide(principal, "need", "update")
    try:
        async with svc.sessions() as session, session.begin():
            need = await service.change_status(
                session,
                svc.outbox,
                need_id=need_id,
                to=body.status,
                reason=body.reason,
                expected_revision=expected_version(if_match),
                on_close=svc.need_closed,
            )
    except service.NeedNotFound:
        raise Problem(404, "Need not found") from None
    except IllegalTransition as error:
        raise _conflict(error, need_status=error.current, allowed=error.allowed) from None
    except service.PastItsDate as error:
        raise _conflict(error) from None
    except service.RevisionMismatch as error:
        raise version_conflict(error.current) from None
    set_etag(response, need["revision"])
    return _view(need, staff=True)
