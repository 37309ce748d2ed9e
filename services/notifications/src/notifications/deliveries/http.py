"""The delivery log and resends.

A citizen sees their own delivery log, an embassy officer those of people living in
their embassies' jurisdiction (from the country of residence kept in ``recipients``),
an admin everyone's. Anyone else is refused (403), and a recipient outside the
caller's scope is "not found" (404). A resend is for an admin or an embassy officer
within the jurisdiction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request

from diaspora_identity.audit import AccessContext
from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_service.problems import Problem
from notifications.deliveries import service as deliveries_service
from notifications.deliveries.schemas import DeliveryOut, DeliveryPage, ResendOut
from notifications.deps import IdentityDep, ServiceDep

# The delivery log (first in the document, as it always was) and the resend.
log_router = APIRouter(tags=["deliveries"])
router = APIRouter(tags=["deliveries"], responses=AUTH_RESPONSES)


@log_router.get(
    "/recipients/{member_id}/deliveries",
    response_model=DeliveryPage,
    responses={**AUTH_RESPONSES, 404: {"description": "No such recipient within your scope"}},
)
async def list_deliveries(
    member_id: UUID,
    request: Request,
    service: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: datetime | None = None,
) -> DeliveryPage:
    """A person's delivery log, newest first (keyset pagination on `before`).

    Anyone but the person reading it (an officer, an admin) leaves an audit entry in the
    same transaction as the read (notifications.audit.recorded, keyed by member id)."""
    decision = identity.policy.decide(principal, "delivery", "list")
    scope = deliveries_service.recipient_scope(decision, identity)
    if not await deliveries_service.in_scope(service, scope, member_id):
        raise Problem(404, "Recipient not found")
    rows = await deliveries_service.delivery_log(
        service,
        decision,
        AccessContext.of(request),
        member_id=member_id,
        reader=principal.member_id,
        limit=limit,
        before=before,
    )
    items = [DeliveryOut.model_validate(r, from_attributes=True) for r in rows[:limit]]
    return DeliveryPage(
        items=items, next_before=items[-1].created_at if len(rows) > limit else None
    )


@router.post(
    "/deliveries/{delivery_id}/resend",
    response_model=ResendOut,
    status_code=201,
    responses={404: {"description": "No such delivery within your scope"}},
)
async def resend(
    delivery_id: UUID,
    service: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ResendOut:
    """A new attempt of a delivery: the same message, to the person's current address on
    the same channel, as a new delivery (new Message-ID). With ``Idempotency-Key`` a
    repeated request creates nothing more."""
    decision = identity.policy.decide(principal, "delivery", "resend")
    scope = deliveries_service.recipient_scope(decision, identity)
    try:
        found = await deliveries_service.resend(service, scope, delivery_id, idempotency_key)
    except deliveries_service.NotResent as refused:
        raise Problem(409, refused.title, detail=refused.detail) from None
    if found is None:
        raise Problem(404, "Delivery not found")
    original, created = found
    return ResendOut(
        id=created.id, previous_id=original.id, channel=created.channel, status=created.status
    )
