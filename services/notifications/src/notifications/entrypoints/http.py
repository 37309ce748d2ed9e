"""The notifications service's HTTP interface (the delivery log here, the rest in ``api``).

Every call needs a bearer token; the policy table (diaspora_identity) decides:
a citizen sees their own delivery log, an embassy officer those of people living
in their embassies' jurisdiction (from the country of residence kept in
``recipients``), an admin everyone's. Anyone else is refused (403), and a
recipient outside the caller's scope is "not found" (404).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from diaspora_events.observability import setup_observability
from diaspora_identity.audit import AccessContext
from diaspora_identity.http import CurrentPrincipal, Identity, install_identity
from diaspora_service.app import create_app
from diaspora_service.problems import Problem
from diaspora_service.request_id import RequestIdMiddleware
from notifications import SERVICE_NAME
from notifications.adapters.orm import deliveries, recipients
from notifications.api import ROUTERS
from notifications.audit import DELIVERY_FIELDS, audit_trail
from notifications.bootstrap import Notifications, bootstrap
from notifications.templates import seed_missing

router = APIRouter(tags=["deliveries"])


class DeliveryOut(BaseModel):
    id: UUID
    recipient_id: UUID | None
    channel: str
    template: str
    template_version: int | None
    category: str
    language: str
    subject: str | None
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None
    reason: str = Field(
        description="event, campaign, fallback (after a permanent failure) or resend"
    )
    previous_id: UUID | None = Field(
        description="The delivery this one falls back from or resends."
    )
    campaign_id: UUID | None


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_before: datetime | None


def _service(request: Request) -> Notifications:
    service: Notifications = request.app.state.service
    return service


ServiceDep = Annotated[Notifications, Depends(_service)]


def _identity(request: Request) -> Identity:
    identity: Identity = request.app.state.identity
    return identity


IdentityDep = Annotated[Identity, Depends(_identity)]


@router.get(
    "/recipients/{member_id}/deliveries",
    response_model=DeliveryPage,
    responses={
        401: {"description": "Missing or invalid bearer token (problem details)"},
        403: {"description": "Your roles do not allow this function (problem details)"},
        404: {"description": "No such recipient within your scope"},
    },
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
    scope = decision.where(
        {
            "recipient_id": recipients.c.member_id,
            "embassy_id": identity.jurisdictions.sql_embassy_of(recipients.c.country_of_residence),
        }
    )
    async with service.sessions() as session:
        in_scope = (
            await session.execute(
                select(recipients.c.member_id).where(recipients.c.member_id == member_id, scope)
            )
        ).first()
    if in_scope is None:
        raise Problem(404, "Recipient not found")
    query = (
        select(deliveries)
        .where(deliveries.c.recipient_id == member_id)
        .order_by(deliveries.c.created_at.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(deliveries.c.created_at < before)
    async with service.sessions() as session, session.begin():
        rows = (await session.execute(query)).all()
        if principal.member_id != member_id:
            await audit_trail(service.outbox).record(
                session, decision, AccessContext.of(request), [(member_id, DELIVERY_FIELDS)]
            )
    items = [DeliveryOut.model_validate(r, from_attributes=True) for r in rows[:limit]]
    return DeliveryPage(
        items=items, next_before=items[-1].created_at if len(rows) > limit else None
    )


def build_app(service: Notifications | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = service is None
        app.state.service = service or bootstrap()
        app.state.identity = Identity.from_settings(app.state.service.settings)
        app.state.trusted_proxies = app.state.service.settings.trusted_proxies
        async with app.state.service.sessions() as session, session.begin():
            await seed_missing(session)
        setup_observability(SERVICE_NAME, json_logs=app.state.service.settings.json_logs)
        try:
            yield
        finally:
            await app.state.identity.aclose()
            if owned:
                await app.state.service.close()

    async def database_ready() -> bool:
        ready: bool = await application.state.service.database_ready()
        return ready

    application = create_app(
        title="Notifications",
        version="0.1.0",
        description=(
            "Messages to members: templates, channels (email, SMS, in-app inbox), "
            "preferences, delivery log, campaigns."
        ),
        routers=[router, *ROUTERS],
        lifespan=lifespan,
        readiness={"database": database_ready},
    )
    install_identity(application)
    application.add_middleware(RequestIdMiddleware)
    return application


def app() -> FastAPI:
    """Factory for `uvicorn --factory notifications.entrypoints.http:app`."""
    return build_app()
