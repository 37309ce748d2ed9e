"""The officers' review queue of likely duplicates over HTTP: list, read, merge, dismiss.

Scoped by the policy's ``duplicate_case`` resource: an officer sees the cases of
their embassies (a case belongs to the embassy covering the newer record); a
case outside the caller's scope is "not found". Every record shown is an
audited read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from diaspora_identity.audit import AccessContext
from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_service.problems import Problem
from diaspora_service.text import SingleLine
from registry.deps import registry_of
from registry.duplicate_review.service import (
    AccountsConflict,
    CaseClosed,
    CaseNotFound,
    CaseQuery,
    NotInCase,
    dismiss_case,
    find_cases,
    merge_case,
)

router = APIRouter(prefix="/duplicates", tags=["duplicates"])

RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    404: {"description": "No such case within your scope"},
}


class CaseView(BaseModel):
    """A review case: two records that are likely one person, side by side."""

    model_config = ConfigDict(extra="allow")

    id: UUID
    embassy_id: str = Field(
        description="The embassy covering the newer record (whose officers review it when "
        "the other record is under the same embassy)."
    )
    queue: Literal["embassy", "ministry"] = Field(
        description="`embassy`: both records live under embassy_id, its officers review it; "
        "`ministry`: they live under two embassies, only coordinators and admins see it."
    )
    score: float = Field(ge=0, le=1)
    reasons: list[str] = Field(description="What matched: name~similarity, date_of_birth...")
    source: Literal["registration", "import"]
    import_job_id: UUID | None = None
    status: Literal["open", "merged", "dismissed"]
    flagged_at: datetime
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    survivor_id: UUID | None = None
    member: dict[str, Any] | None = Field(
        None, description="The record being registered or imported when the match was found."
    )
    match: dict[str, Any] | None = Field(None, description="The record it matched.")


class CasePage(BaseModel):
    items: list[CaseView]
    next_offset: int | None = None


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    survivor_id: UUID = Field(description="The record that stays (one of the case's two).")


class Resolution(BaseModel):
    id: UUID
    status: Literal["merged", "dismissed"]
    survivor_id: UUID | None = None
    absorbed_id: UUID | None = None
    changed_fields: list[str] | None = Field(
        None, description="Fields of the survivor that the merge filled in or extended."
    )
    resolved_at: datetime
    resolved_by: str


@router.get("", response_model=CasePage, responses=RESPONSES)
async def list_cases(
    request: Request,
    principal: CurrentPrincipal,
    status: Literal["open", "merged", "dismissed"] = "open",
    embassy: Annotated[SingleLine | None, Query(max_length=64)] = None,
    queue: Annotated[
        Literal["embassy", "ministry"] | None,
        Query(
            description="`embassy`: both records under one embassy; `ministry`: under two "
            "(coordinators and admins only)"
        ),
    ] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> CasePage:
    """Cases whose two records are both within the caller's scope, oldest first, each with
    both records. A case across two embassies is in the ministry queue."""
    registry = registry_of(request)
    decision = registry.identity.policy.decide(principal, "duplicate_case", "list")
    items = await find_cases(
        sessions=registry.sessions,
        audit=registry.audit,
        decision=decision,
        context=AccessContext.of(request),
        query=CaseQuery(
            status=status, embassy=embassy, queue=queue, offset=offset, limit=limit + 1
        ),
    )
    more = len(items) > limit
    return CasePage(
        items=[CaseView(**i) for i in items[:limit]],
        next_offset=offset + limit if more else None,
    )


@router.get("/{case_id}", response_model=CaseView, responses=RESPONSES)
async def read_case(case_id: UUID, request: Request, principal: CurrentPrincipal) -> CaseView:
    """One case with both records."""
    registry = registry_of(request)
    decision = registry.identity.policy.decide(principal, "duplicate_case", "read")
    found = await find_cases(
        sessions=registry.sessions,
        audit=registry.audit,
        decision=decision,
        context=AccessContext.of(request),
        query=CaseQuery(status=None, limit=1),
        case_id=case_id,
    )
    if not found:
        raise Problem(404, "Case not found")
    return CaseView(**found[0])


def _closed(error: CaseClosed) -> Problem:
    return Problem(
        409, "Case already resolved", detail=f"This case was {error.status}.", status_=error.status
    )


@router.post(
    "/{case_id}/merge",
    response_model=Resolution,
    responses={
        **RESPONSES,
        409: {"description": "The case is resolved, or the records belong to two accounts"},
    },
)
async def merge(
    case_id: UUID, body: MergeRequest, request: Request, principal: CurrentPrincipal
) -> Resolution:
    """Merge the two records into the survivor: its values win, its blanks are filled from
    the other, lists are unioned; the other record is deleted with its personal data."""
    registry = registry_of(request)
    decision = registry.identity.policy.decide(principal, "duplicate_case", "merge")
    try:
        result = await merge_case(
            sessions=registry.sessions,
            outbox=registry.outbox,
            audit=registry.audit,
            cipher=registry.cipher,
            decision=decision,
            context=AccessContext.of(request),
            merge_steps=registry.merge_steps,
            erasure_steps=registry.erasure_steps,
            case_id=case_id,
            survivor_id=body.survivor_id,
        )
    except CaseNotFound:
        raise Problem(404, "Case not found") from None
    except CaseClosed as error:
        raise _closed(error) from None
    except NotInCase:
        raise Problem(
            422, "Survivor not in this case", detail="Choose one of the case's two records."
        ) from None
    except AccountsConflict:
        raise Problem(
            409,
            "Records belong to two accounts",
            detail="Each record is linked to a different citizen account; they cannot be "
            "merged. Dismiss the case if they are two people.",
        ) from None
    return Resolution(**result)


@router.post("/{case_id}/dismiss", response_model=Resolution, responses=RESPONSES)
async def dismiss(case_id: UUID, request: Request, principal: CurrentPrincipal) -> Resolution:
    """Not the same person: close the case, both records stay."""
    registry = registry_of(request)
    decision = registry.identity.policy.decide(principal, "duplicate_case", "dismiss")
    try:
        result = await dismiss_case(
            sessions=registry.sessions,
            outbox=registry.outbox,
            decision=decision,
            case_id=case_id,
        )
    except CaseNotFound:
        raise Problem(404, "Case not found") from None
    except CaseClosed as error:
        raise _closed(error) from None
    return Resolution(**result)
