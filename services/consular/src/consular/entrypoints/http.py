"""The consular service's HTTP interface.

The catalogue is public; everything else needs a bearer token, and the policy table
(diaspora_identity) decides who may do what. Each feature has its router in its
``http.py``; they are listed here, one line each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from consular import SERVICE_NAME
from consular.applications.http import router as applications_router
from consular.appointments.http import router as appointments_router
from consular.bootstrap import bootstrap
from consular.catalogue.http import router as catalogue_router
from consular.credentials.http import router as credentials_router
from consular.reports.http import router as reports_router
from consular.resources import Consular
from consular.settings import DocumentLimitSettings
from consular.uploads.http import router as uploads_router
from consular.uploads.http import upload_routes
from diaspora_events.observability import setup_observability
from diaspora_identity.http import install_identity
from diaspora_service.app import create_app
from diaspora_service.request_id import RequestIdMiddleware

ROUTERS: list[APIRouter] = [
    catalogue_router,
    applications_router,
    credentials_router,
    appointments_router,
    reports_router,
    uploads_router,
]


def build_app(service: Consular | None = None) -> FastAPI:
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
        title="Consular",
        version="0.1.0",
        description=(
            "Consular e-services for Togolese abroad: the service catalogue (public), "
            "applications with one state machine for every service type, the officers' "
            "queue per embassy, SLA flags and escalation; issued credentials (consular card, "
            "e-visa) that anyone verifies with the ministry's published key; appointments; "
            "difficulty reports routed to the focal point of the right embassy, with "
            "messages, SLA and the observatory's counts (small cells suppressed). Every call "
            "but the reads of the catalogue, the report categories, the published counts, "
            "the slots and the credentials' key set, revocation list and verification "
            "needs an OIDC bearer token (docs/security.md)."
        ),
        routers=ROUTERS,
        lifespan=lifespan,
        readiness={"database": database_ready},
        # Documents: authorized from the headers before a byte is read, and capped.
        uploads=upload_routes(
            (service.settings.document_limits if service else DocumentLimitSettings()).max_bytes
        ),
    )
    install_identity(application)
    application.add_middleware(RequestIdMiddleware)
    return application


def app() -> FastAPI:
    """Factory for `uvicorn --factory consular.entrypoints.http:app`."""
    return build_app()
