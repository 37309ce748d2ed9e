"""The matching service's HTTP interface.

Every call needs a bearer token; the policy table (diaspora_identity) decides who
may do what. Each feature has its router in its ``http.py``; they are listed
here, one line each.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from diaspora_identity.service_app import service_app
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
    return service_app(
        SERVICE_NAME,
        given=service,
        bootstrap=bootstrap,
        title="Matching",
        description=(
            "National needs and the diaspora experts who could meet them: needs, ranked "
            "candidates with their reasons, proposals, missions, project holders. Every call "
            "needs an OIDC bearer token (docs/security.md)."
        ),
        routers=ROUTERS,
    )


def app() -> FastAPI:
    """Factory for `uvicorn --factory matching.entrypoints.http:app`."""
    return build_app()
