"""HTTP interface of missions (`/missions`)."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from diaspora_events.contracts.matching import NeedType
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
from matching.missions import service

router = APIRouter(prefix="/missions", tags=["missions"])

STEP_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    404: {"description": "No such mission within your scope"},
    409: {"description": "The step does not apply to the mission's state"},
    **PRECONDITION_RESPONSES,
}
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
MissionStatus = Literal["awaiting_agreement", "agreed", "travel_booked", "completed", "cancelled"]


class MissionView(BaseModel):
    """A mission as the caller may see it: fields the policy withholds are absent."""

    id: UUID
    proposal_id: UUID
    need_id: UUID
    member_id: UUID | None = None
    given_name: str | None = None
    family_name: str | None = None
    type: str
    region: str | None = None
    prefecture: str | None = None
    work_mode: str
    country_of_residence: str | None = None
    status: MissionStatus
    starts_on: date | None = None
    ends_on: date | None = None
    terms: str | None = None
    agreed_at: datetime | None = None
    travel_out_on: date | None = None
    travel_back_on: date | None = None
    report: str | None = None
    reported_at: datetime | None = None
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    created_at: datetime
    updated_at: datetime
    revision: int


class MissionPage(BaseModel):
    items: list[MissionView]
    next_offset: int | None = None


class Agreement(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    starts_on: date
    ends_on: date
    terms: MultiLine = Field(
        min_length=1,
        max_length=4000,
        description="What was agreed: tasks, hosting, allowances, who pays the travel.",
    )


class Travel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    travel_out_on: date = Field(description="Day of departure to Togo.")
    travel_back_on: date = Field(description="Day of return.")


class Report(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    report: MultiLine = Field(min_length=20, max_length=4000, description="What was done, briefly.")


class Cancellation(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: MultiLine | None = Field(None, max_length=1000)


class CountCell(BaseModel):
    model_config = ConfigDict(extra="allow")

    missions: int | None = Field(description="null when suppressed (small count)")


class MissionCounts(BaseModel):
    by: list[str]
    status: str
    exact: bool = Field(description="false: small cells suppressed")
    threshold: int
    total: int | None
    cells: list[CountCell]


async def _step(response: Response, action: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    try:
        item = await action
    except service.MissionNotFound:
        raise Problem(404, "Mission not found") from None
    except service.WrongState as error:
        raise Problem(
            409, "Not in this state", detail=str(error), mission_status=error.status
        ) from None
    except service.InvalidDates as error:
        raise Problem(422, "Invalid dates", detail=str(error)) from None
    except service.RevisionMismatch as error:
        raise version_conflict(error.current) from None
    set_etag(response, item["revision"])
    return item


@router.get(
    "", response_model=MissionPage, response_model_exclude_unset=True, responses=AUTH_RESPONSES
)
async def list_missions(
    svc: ServiceDep,
    principal: CurrentPrincipal,
    request: Request,
    status: MissionStatus | None = None,
    need_id: UUID | None = None,
    type: NeedType | None = None,
    region: Annotated[SingleLine | None, Query(max_length=8)] = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> MissionPage:
    """Missions within your scope (an expert: their own), newest first."""
    decision = svc.identity.policy.decide(principal, "mission", "list")
    items = await service.find_missions(
        sessions=svc.sessions,
        audit=svc.audit,
        decision=decision,
        context=AccessContext.of(request),
        query=service.MissionQuery(
            status=status,
            need_id=need_id,
            type=type,
            region=region,
            offset=offset,
            limit=limit + 1,
        ),
    )
    more = len(items) > limit
    return MissionPage(
        items=[MissionView(**i) for i in items[:limit]],
        next_offset=offset + limit if more else None,
    )


@router.get("/statistics", response_model=MissionCounts, responses=AUTH_RESPONSES)
async def statistics(
    svc: ServiceDep,
    principal: CurrentPrincipal,
    by: Annotated[
        list[Literal["type", "region", "country"]] | None,
        Query(description="Dimensions (repeat): need type, region of Togo, expert's country"),
    ] = None,
    status: Literal["completed", "agreed", "travel_booked", "cancelled", "all"] = "completed",
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    exact: Annotated[
        bool, Query(description="Exact counts (roles granted `statistics_exact` only)")
    ] = False,
) -> service.MissionCounts:
    """Missions counted by type, region and country of origin (the expert's country of
    residence). Counts under 5 are suppressed (null) unless `exact` is asked by a role
    that may."""
    action = "statistics_exact" if exact else "statistics"
    decision = svc.identity.policy.decide(principal, "mission", action)
    return await service.mission_statistics(
        sessions=svc.sessions,
        decision=decision,
        by=by or ["type"],
        status=status,
        year=year,
    )


@router.get(
    "/{mission_id}",
    response_model=MissionView,
    response_model_exclude_unset=True,
    responses={**AUTH_RESPONSES, 404: {"description": "No such mission within your scope"}},
)
async def read_mission(
    mission_id: UUID,
    svc: ServiceDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """One mission."""
    decision = svc.identity.policy.decide(principal, "mission", "read")
    found = await service.find_missions(
        sessions=svc.sessions,
        audit=svc.audit,
        decision=decision,
        context=AccessContext.of(request),
        query=service.MissionQuery(mission_id=mission_id, limit=1),
    )
    if not found:
        raise Problem(404, "Mission not found")
    set_etag(response, found[0]["revision"])
    return found[0]


@router.post(
    "/{mission_id}/agreement",
    response_model=MissionView,
    response_model_exclude_unset=True,
    responses=STEP_RESPONSES,
)
async def agree(
    mission_id: UUID,
    body: Agreement,
    svc: ServiceDep,
    principal: CurrentPrincipal,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Record the agreement with the expert: dates and terms."""
    decision = svc.identity.policy.decide(principal, "mission", "agree")
    return await _step(
        response,
        service.agree(
            sessions=svc.sessions,
            outbox=svc.outbox,
            decision=decision,
            mission_id=mission_id,
            starts_on=body.starts_on,
            ends_on=body.ends_on,
            terms=body.terms,
            if_match=expected_version(if_match),
        ),
    )


@router.put(
    "/{mission_id}/travel",
    response_model=MissionView,
    response_model_exclude_unset=True,
    responses=STEP_RESPONSES,
)
async def travel(
    mission_id: UUID,
    body: Travel,
    svc: ServiceDep,
    principal: CurrentPrincipal,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Record or correct the travel dates (the expert, or the ministry)."""
    decision = svc.identity.policy.decide(principal, "mission", "travel")
    return await _step(
        response,
        service.book_travel(
            sessions=svc.sessions,
            decision=decision,
            mission_id=mission_id,
            travel_out_on=body.travel_out_on,
            travel_back_on=body.travel_back_on,
            if_match=expected_version(if_match),
        ),
    )


@router.put(
    "/{mission_id}/report",
    response_model=MissionView,
    response_model_exclude_unset=True,
    responses=STEP_RESPONSES,
)
async def report(
    mission_id: UUID,
    body: Report,
    svc: ServiceDep,
    principal: CurrentPrincipal,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Write the mission's short report (the expert, or the ministry)."""
    decision = svc.identity.policy.decide(principal, "mission", "report")
    return await _step(
        response,
        service.write_report(
            sessions=svc.sessions,
            decision=decision,
            mission_id=mission_id,
            report=body.report,
            if_match=expected_version(if_match),
        ),
    )


@router.post(
    "/{mission_id}/complete",
    response_model=MissionView,
    response_model_exclude_unset=True,
    responses=STEP_RESPONSES,
)
async def complete(
    mission_id: UUID,
    svc: ServiceDep,
    principal: CurrentPrincipal,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Close a mission carried out; it is counted from now on."""
    decision = svc.identity.policy.decide(principal, "mission", "complete")
    return await _step(
        response,
        service.complete(
            sessions=svc.sessions,
            outbox=svc.outbox,
            decision=decision,
            mission_id=mission_id,
            if_match=expected_version(if_match),
        ),
    )


@router.post(
    "/{mission_id}/cancel",
    response_model=MissionView,
    response_model_exclude_unset=True,
    responses=STEP_RESPONSES,
)
async def cancel(
    mission_id: UUID,
    body: Cancellation,
    svc: ServiceDep,
    principal: CurrentPrincipal,
    response: Response,
) -> dict[str, Any]:
    """Cancel a mission that will not take place."""
    decision = svc.identity.policy.decide(principal, "mission", "cancel")
    return await _step(
        response,
        service.cancel(
            sessions=svc.sessions,
            outbox=svc.outbox,
            decision=decision,
            mission_id=mission_id,
            reason=body.reason,
        ),
    )
