"""Campaign routes (``/campaigns``): the ministry coordinator's (and admin's)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import uuid_utils.compat as uuid_compat
from fastapi import APIRouter, Header, Query

from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_service.problems import Problem
from notifications.campaigns import service as campaigns_service
from notifications.campaigns.schemas import (
    AudienceIn,
    AudienceOut,
    CampaignIn,
    CampaignOut,
    CampaignPage,
    ScheduleIn,
)
from notifications.deps import IdentityDep, ServiceDep
from notifications.problems import invalid
from notifications.resources import Notifications

router = APIRouter(prefix="/campaigns", tags=["campaigns"], responses=AUTH_RESPONSES)


async def _template_category(service: Notifications, key: str) -> tuple[str, set[str]]:
    try:
        return await campaigns_service.template_needs(service, key)
    except campaigns_service.UnknownTemplate:
        raise invalid(
            "Unknown template", [{"field": "template", "message": f"no {key!r}"}]
        ) from None


@router.post("/audience", response_model=AudienceOut)
async def preview_audience(
    body: AudienceIn, service: ServiceDep, identity: IdentityDep, principal: CurrentPrincipal
) -> AudienceOut:
    """How many people the segment reaches now (opt-outs and missing consents removed)."""
    identity.policy.decide(principal, "campaign", "create")
    category_name, _ = await _template_category(service, body.template)
    size = await campaigns_service.audience_now(service, body.segment, category_name)
    return AudienceOut(audience=size, category=category_name)


async def _campaign_out(service: Notifications, row: Any, *, with_progress: bool) -> CampaignOut:
    out = CampaignOut.model_validate(row, from_attributes=True)
    if with_progress:
        out.progress = await campaigns_service.progress_of(service, row.id)
    return out


@router.post("", response_model=CampaignOut, status_code=201)
async def create_campaign(
    body: CampaignIn,
    service: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> CampaignOut:
    identity.policy.decide(principal, "campaign", "create")
    _category, needed = await _template_category(service, body.template)
    missing = sorted(needed - set(body.variables))
    if missing:
        raise invalid(
            "Missing template variables",
            [{"field": "variables", "message": f"missing: {', '.join(missing)}"}],
        )
    if body.send_at is not None and body.send_at.tzinfo is None:
        raise invalid("send_at needs a time zone", [{"field": "send_at", "message": "naive"}])
    values = {
        "id": uuid_compat.uuid7(),
        "name": body.name,
        "template": body.template,
        "variables": body.variables,
        "segment": body.segment.model_dump(),
        "rate_per_second": body.rate_per_second or service.settings.campaign_rate_per_second,
        "status": "scheduled" if body.send_at else "draft",
        "send_at": body.send_at,
        "created_by": principal.subject,
        "idempotency_key": f"{principal.subject}:{idempotency_key}" if idempotency_key else None,
    }
    row = await campaigns_service.create(service, values)
    return await _campaign_out(service, row, with_progress=False)


@router.get("", response_model=CampaignPage)
async def list_campaigns(
    service: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: datetime | None = None,
) -> CampaignPage:
    identity.policy.decide(principal, "campaign", "read")
    rows = await campaigns_service.page(service, limit=limit, before=before)
    items = [CampaignOut.model_validate(r, from_attributes=True) for r in rows[:limit]]
    return CampaignPage(
        items=items, next_before=items[-1].created_at if len(rows) > limit else None
    )


@router.get("/{campaign_id}", response_model=CampaignOut)
async def get_campaign(
    campaign_id: UUID, service: ServiceDep, identity: IdentityDep, principal: CurrentPrincipal
) -> CampaignOut:
    """The campaign with its progress: audience states and delivery outcomes per channel."""
    identity.policy.decide(principal, "campaign", "read")
    row = await campaigns_service.find(service, campaign_id)
    if row is None:
        raise Problem(404, "Campaign not found")
    return await _campaign_out(service, row, with_progress=True)


@router.post("/{campaign_id}/schedule", response_model=CampaignOut)
async def schedule_campaign(
    campaign_id: UUID,
    body: ScheduleIn,
    service: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
) -> CampaignOut:
    identity.policy.decide(principal, "campaign", "schedule")
    if body.send_at.tzinfo is None:
        raise invalid("send_at needs a time zone", [{"field": "send_at", "message": "naive"}])
    try:
        row = await campaigns_service.schedule(service, campaign_id, body.send_at)
    except campaigns_service.AlreadyStarted as started:
        raise Problem(409, "Campaign already started", detail=f"It is {started.status}.") from None
    if row is None:
        raise Problem(404, "Campaign not found")
    return await _campaign_out(service, row, with_progress=False)


@router.post("/{campaign_id}/cancel", response_model=CampaignOut)
async def cancel_campaign(
    campaign_id: UUID, service: ServiceDep, identity: IdentityDep, principal: CurrentPrincipal
) -> CampaignOut:
    """Stop it: nobody not yet handed over gets it; queued, unsent messages are cancelled."""
    identity.policy.decide(principal, "campaign", "cancel")
    row = await campaigns_service.cancel(service, campaign_id)
    if row is None:
        raise Problem(404, "Campaign not found", detail="Or it is already finished.")
    return await _campaign_out(service, row, with_progress=True)
