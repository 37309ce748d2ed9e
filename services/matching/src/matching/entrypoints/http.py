"""The matching service's HTTP interface.

Every call needs a bearer token; the policy table (diaspora_identity) decides who
may do what. Each feature has its router in its ``http.py``; they are listed
here, one line each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from diaspora_events.observability import setup_observability
from diaspora_identity.http import install_identity
from diaspora_service.app import create_app
from diaspora_service.request_id import RequestIdMiddleware
from matching import SERVICE_NAME
from matching.bootstrap import bootstrap
from matching.missions.http import router as missions_router
from matching.needs.http import router as needs_router
from matching.projects.http import router as projects_router
from matching.proposals.http import router as proposals_router
from matching.ranking.http import router as candidates_router
from matching.resources import Matching

ROUTERS: list[APIRouter] = [
    needs_router,
    candidates_router,
    proposals_router,
    missions_router,
    projects_router,
]


def build_app(service: Matching | None = None) -> FastAPI:
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
        title="Matching",
        version="0.1.0",
        description=(
            "National needs and the diaspora experts who could meet them: needs, ranked "
            "candidates with their reasons, proposals, missions, project holders. Every call "
            "needs an OIDC bearer token (docs/security.md)."
        ),
        routers=ROUTERS,
        lifespan=lifespan,
        readiness={"database": database_ready},
    )
    install_identity(application)
    application.add_middleware(RequestIdMiddleware)
    return application


def app() -> FastAPI:
    """Factory for `uvicorn --factory matching.entrypoints.http:app`."""
    return build_app()
