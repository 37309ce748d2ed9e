"""The consular service's HTTP interface.

The catalogue is public; everything else needs a bearer token, and the policy table
(diaspora_identity) decides who may do what. Each feature has its router in its
``http.py``; they are listed here, one line each.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from consular import SERVICE_NAME
from consular.applications.http import router as applications_router
from consular.appointments.http import router as appointments_router
from consular.bootstrap import bootstrap
from consular.catalogue.http import router as catalogue_router
from consular.credentials.http import router as credentials_router
from consular.handover.http import router as handover_router
from consular.payments.http import router as payments_router
from consular.reports.http import router as reports_router
from consular.resources import Consular
from consular.settings import DocumentLimitSettings
from consular.uploads.http import router as uploads_router
from consular.uploads.http import upload_routes
from diaspora_identity.service_app import service_app

ROUTERS: list[APIRouter] = [
    catalogue_router,
    applications_router,
    credentials_router,
    appointments_router,
    reports_router,
    payments_router,
    handover_router,
    uploads_router,
]


def build_app(service: Consular | None = None) -> FastAPI:
    return service_app(
        SERVICE_NAME,
        given=service,
        bootstrap=bootstrap,
        title="Consular",
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
        # Documents: authorized from the headers before a byte is read, and capped.
        uploads=upload_routes(
            (service.settings.document_limits if service else DocumentLimitSettings()).max_bytes
        ),
    )


def app() -> FastAPI:
    """Factory for `uvicorn --factory consular.entrypoints.http:app`."""
    return build_app()
