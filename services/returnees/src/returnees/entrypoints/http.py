"""The returnees service's HTTP interface.

Every route but the public reads of the country lists and the awareness
subscriptions needs a bearer token, and the policy table (diaspora_identity) decides who
may do what. Each feature has its router in its ``http.py``; they are listed here, one
line each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from diaspora_events.observability import setup_observability
from diaspora_identity.http import install_identity
from diaspora_service.app import create_app
from diaspora_service.request_id import RequestIdMiddleware
from returnees import SERVICE_NAME
from returnees.bootstrap import bootstrap
from returnees.countries.http import router as countries_router
from returnees.resources import Returnees
from returnees.subscribers.http import router as subscriptions_router

ROUTERS: list[APIRouter] = [
    countries_router,  # country lists: public reads of published entries
    subscriptions_router,  # awareness subscriptions: public, no token
]


def build_app(service: Returnees | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = service is None
        app.state.service = service or bootstrap()
        app.state.identity = app.state.service.identity
        app.state.trusted_proxies = app.state.service.settings.trusted_proxies
        setup_observability(SERVICE_NAME, json_logs=app.state.service.settings.json_logs)
        try:
            yield
        finally:
            if owned:
                await app.state.service.close()

    async def database_ready() -> bool:
        ready: bool = await application.state.service.database_ready()
        return ready

    application = create_app(
        title="Returnees",
        version="0.1.0",
        description=(
            "The ministry's return cell: cases of returning migrants (opened by a case "
            "worker, by the returnee before return, or when consular issues a "
            "laissez-passer), intake, needs assessment, reintegration plan, follow-ups and "
            "closure. Health, psychosocial and vulnerability fields are sealed at rest and "
            "shown only to the assigned case worker; every staff read is audited. Every "
            "call needs an OIDC bearer token (docs/security.md)."
        ),
        routers=ROUTERS,
        lifespan=lifespan,
        readiness={"database": database_ready},
    )
    install_identity(application)
    application.add_middleware(RequestIdMiddleware)
    return application


def app() -> FastAPI:
    """Factory for `uvicorn --factory returnees.entrypoints.http:app`."""
    return build_app()
