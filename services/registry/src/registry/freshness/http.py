"""The freshness score of a member's profile, for the person and the officers in scope."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from diaspora_identity.audit import AccessContext
from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_service.problems import Problem
from registry.deps import RegistryDep
from registry.freshness.service import freshness
from registry.members.reads import MemberQuery, find_members

router = APIRouter(prefix="/members", tags=["members"])


class FreshnessView(BaseModel):
    score: float = Field(ge=0, le=1, description="0.7 x recency + 0.3 x completeness")
    recency: float = Field(
        ge=0,
        le=1,
        description="1 after a confirmation or update, 0.5 "
        "when the profile turns stale, 0 at twice that age",
    )
    completeness: float = Field(ge=0, le=1, description="Share of the key fields filled in")
    last_confirmed_at: datetime | None
    last_changed_at: datetime
    stale: bool
    stale_since: datetime | None
    missing: list[str] = Field(description="Key fields still empty")


@router.get(
    "/{member_id}/freshness",
    response_model=FreshnessView,
    responses={**AUTH_RESPONSES, 404: {"description": "No such member within your scope"}},
)
async def read_freshness(
    member_id: UUID, registry: RegistryDep, principal: CurrentPrincipal, request: Request
) -> dict[str, Any]:
    """How fresh the profile is (0 to 1), and what would make it fresher."""
    decision = registry.identity.policy.decide(principal, "member", "read")
    found = await find_members(
        sessions=registry.sessions,
        audit=registry.audit,
        decision=decision,
        context=AccessContext.of(request),
        query=MemberQuery(member_id=member_id, limit=1),
    )
    if not found or "registered_at" not in found[0]:
        raise Problem(404, "Member not found")
    return freshness(
        found[0], now=datetime.now(UTC), stale_after_months=registry.settings.stale_after_months
    ).as_dict()
