"""HTTP interface of proposals: `POST/GET /needs/{id}/proposals` for coordinators,
`/proposals` for experts (their own) and coordinators."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from diaspora_events.contracts.matching import DeclineReason
from diaspora_identity.audit import AccessContext
from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_service.problems import Problem
from diaspora_service.text import MultiLine
from matching.deps import ServiceDep
from matching.proposals import service

router = APIRouter(tags=["proposals"])

ANSWER_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    200: {"description": "The proposal after the answer (repeating an answer changes nothing)"},
    404: {"description": "No such proposal of yours"},
    409: {"description": "Already answered otherwise, withdrawn, or the need is closed"},
}
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
ProposalStatus = Literal["proposed", "accepted", "declined", "withdrawn"]


class ProposalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_ids: list[UUID] = Field(
        min_length=1,
        max_length=service.MAX_PER_REQUEST,
        description="The shortlisted experts (from GET /needs/{id}/candidates).",
    )
    respond_by: date | None = Field(None, description="Answer wanted by this day.")


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: DeclineReason
    comment: MultiLine | None = Field(None, max_length=1000, description="In your own words.")


class ReasonView(BaseModel):
    code: str
    text: str
    points: float


class NeedSummary(BaseModel):
    title: str
    type: str
    institution: str
    region: str | None = None
    prefecture: str | None = None
    work_mode: str
    starts_on: date | None = None
    ends_on: date | None = None
    status: str


class ProposalView(BaseModel):
    """A proposal as the caller may see it: fields the policy withholds are absent."""

    id: UUID
    need_id: UUID
    member_id: UUID | None = Field(None, description="The expert; null after their erasure.")
    given_name: str | None = None
    family_name: str | None = None
    status: ProposalStatus
    score: float = Field(description="The ranking's score when proposed, 0 to 100.")
    reasons: list[ReasonView] | None = None
    proposed_at: datetime
    respond_by: date | None = None
    answered_at: datetime | None = None
    decline_reason: str | None = None
    decline_comment: str | None = None
    withdrawn_at: datetime | None = None
    withdraw_reason: str | None = None
    mission_id: UUID | None = Field(None, description="The mission, once accepted.")
    need: NeedSummary


class ProposalPage(BaseModel):
    items: list[ProposalView]
    next_offset: int | None = None


class ProposalsSent(BaseModel):
    created: int = Field(description="How many proposals this request created.")
    items: list[ProposalView]


async def _page(
    svc: Any, principal: Any, request: Request, query: service.ProposalQuery
) -> ProposalPage:
    decision = svc.identity.policy.decide(principal, "match_proposal", "list")
    limit = query.limit
    items = await service.find_proposals(
        sessions=svc.sessions,
        audit=svc.audit,
        decision=decision,
        context=AccessContext.of(request),
        query=service.ProposalQuery(
            need_id=query.need_id, status=query.status, offset=query.offset, limit=limit + 1
        ),
    )
    more = len(items) > limit
    return ProposalPage(
        items=[ProposalView(**i) for i in items[:limit]],
        next_offset=query.offset + limit if more else None,
    )


@router.post(
    "/needs/{need_id}/proposals",
    status_code=201,
    response_model=ProposalsSent,
    response_model_exclude_unset=True,
    responses={
        **AUTH_RESPONSES,
        200: {"description": "Every expert had the proposal already: nothing new"},
        404: {"description": "No such need"},
        409: {"description": "The need does not take proposals in its status"},
        422: {"description": "Some experts are not candidates now (see `refused`)"},
    },
)
async def propose(
    need_id: UUID,
    body: ProposalRequest,
    svc: ServiceDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
) -> ProposalsSent:
    """Propose the need to shortlisted experts; each one is told. Only candidates who
    pass the hard filters now; repeating a request proposes nobody twice."""
    decision = svc.identity.policy.decide(principal, "match_proposal", "create")
    try:
        items, created = await service.propose(
            sessions=svc.sessions,
            outbox=svc.outbox,
            audit=svc.audit,
            decision=decision,
            context=AccessContext.of(request),
            need_id=need_id,
            member_ids=body.member_ids,
            respond_by=body.respond_by,
        )
    except service.NeedNotFound:
        raise Problem(404, "Need not found") from None
    except service.NeedNotOpen as error:
        raise Problem(
            409,
            "Need not taking proposals",
            detail=f"The need is {error.status}.",
            need_status=error.status,
        ) from None
    except service.NotCandidates as error:
        raise Problem(
            422,
            "Not candidates",
            detail="Nobody was proposed: these experts are not candidates for this need now.",
            refused=[
                {"member_id": str(member), "reason": why} for member, why in error.refused.items()
            ],
        ) from None
    if not created:
        response.status_code = 200
    return ProposalsSent(created=created, items=[ProposalView(**i) for i in items])


@router.get(
    "/needs/{need_id}/proposals",
    response_model=ProposalPage,
    response_model_exclude_unset=True,
    responses=AUTH_RESPONSES,
)
async def need_proposals(
    need_id: UUID,
    svc: ServiceDep,
    principal: CurrentPrincipal,
    request: Request,
    status: ProposalStatus | None = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> ProposalPage:
    """The proposals of one need and their answers, newest first."""
    query = service.ProposalQuery(need_id=need_id, status=status, offset=offset, limit=limit)
    return await _page(svc, principal, request, query)


@router.get(
    "/proposals",
    response_model=ProposalPage,
    response_model_exclude_unset=True,
    responses=AUTH_RESPONSES,
)
async def list_proposals(
    svc: ServiceDep,
    principal: CurrentPrincipal,
    request: Request,
    need_id: UUID | None = None,
    status: ProposalStatus | None = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> ProposalPage:
    """Proposals within your scope: an expert's own, every one for a coordinator."""
    query = service.ProposalQuery(need_id=need_id, status=status, offset=offset, limit=limit)
    return await _page(svc, principal, request, query)


@router.get(
    "/proposals/{proposal_id}",
    response_model=ProposalView,
    response_model_exclude_unset=True,
    responses={**AUTH_RESPONSES, 404: {"description": "No such proposal within your scope"}},
)
async def read_proposal(
    proposal_id: UUID, svc: ServiceDep, principal: CurrentPrincipal, request: Request
) -> dict[str, Any]:
    """One proposal."""
    decision = svc.identity.policy.decide(principal, "match_proposal", "read")
    found = await service.find_proposals(
        sessions=svc.sessions,
        audit=svc.audit,
        decision=decision,
        context=AccessContext.of(request),
        query=service.ProposalQuery(proposal_id=proposal_id, limit=1),
    )
    if not found:
        raise Problem(404, "Proposal not found")
    return found[0]


async def _answer(action: Awaitable[tuple[dict[str, Any], bool]]) -> dict[str, Any]:
    try:
        item, _changed = await action
    except service.ProposalNotFound:
        raise Problem(404, "Proposal not found") from None
    except service.AlreadyAnswered as error:
        raise Problem(
            409,
            "Already answered",
            detail=f"This proposal is {error.status}.",
            proposal_status=error.status,
        ) from None
    except service.NeedNotOpen as error:
        raise Problem(
            409,
            "Need closed",
            detail=f"The need is {error.status}: it takes no more answers.",
            need_status=error.status,
        ) from None
    return item


@router.post(
    "/proposals/{proposal_id}/accept",
    response_model=ProposalView,
    response_model_exclude_unset=True,
    responses=ANSWER_RESPONSES,
)
async def accept(proposal_id: UUID, svc: ServiceDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Accept a mission proposed to you; its mission record opens."""
    decision = svc.identity.policy.decide(principal, "match_proposal", "answer")
    return await _answer(
        service.accept(
            sessions=svc.sessions, outbox=svc.outbox, decision=decision, proposal_id=proposal_id
        )
    )


@router.post(
    "/proposals/{proposal_id}/decline",
    response_model=ProposalView,
    response_model_exclude_unset=True,
    responses=ANSWER_RESPONSES,
)
async def decline(
    proposal_id: UUID, body: Answer, svc: ServiceDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Decline a mission proposed to you, with a reason."""
    decision = svc.identity.policy.decide(principal, "match_proposal", "answer")
    return await _answer(
        service.decline(
            sessions=svc.sessions,
            outbox=svc.outbox,
            decision=decision,
            proposal_id=proposal_id,
            reason=body.reason,
            comment=body.comment or None,
        )
    )
