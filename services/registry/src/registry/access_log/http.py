"""A person's access log over HTTP: who read or changed their record, in any service."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_service.problems import Problem
from registry.access_log.service import access_log
from registry.deps import Limit, RegistryDep
from registry.members.reads import member_in_scope

router = APIRouter(prefix="/members", tags=["members"])


class AccessLogEntry(BaseModel):
    occurred_at: datetime
    action: str
    actor_roles: list[str]
    actor_subject: str = Field(description="The staff member's or system's id at the issuer.")
    actor_is_service: bool
    fields: list[str] = Field(description="The fields of the record they received.")
    service: str = Field(
        description="The service where the access happened (registry, matching, ...)."
    )


class AccessLogPage(BaseModel):
    items: list[AccessLogEntry]
    next_before: datetime | None


@router.get(
    "/{member_id}/access-log",
    response_model=AccessLogPage,
    responses={**AUTH_RESPONSES, 404: {"description": "No such member within your scope"}},
)
async def read_access_log(
    member_id: UUID,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    before: datetime | None = None,
    limit: Limit = 50,
) -> AccessLogPage:
    """Who read or changed this member's record in any service (a person sees their own),
    newest first; other services' accesses arrive through their audit events."""
    decision = registry.identity.policy.decide(principal, "member_access_log", "list")
    if not await member_in_scope(
        sessions=registry.sessions, decision=decision, member_id=member_id
    ):
        raise Problem(404, "Member not found")
    rows = await access_log(
        sessions=registry.sessions, member_id=member_id, before=before, limit=limit + 1
    )
    items = [AccessLogEntry(**row) for row in rows[:limit]]
    return AccessLogPage(
        items=items, next_before=items[-1].occurred_at if len(rows) > limit else None
    )
