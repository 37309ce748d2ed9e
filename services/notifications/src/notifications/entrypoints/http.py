"""The notifications service's HTTP interface: the feature routers, in one app.

Every call but an email's confirmation link needs a bearer token; the policy table
(diaspora_identity ``policy.yaml``) decides, in each feature's ``http.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from diaspora_events.observability import setup_observability
from diaspora_identity.http import Identity, install_identity
from diaspora_service.app import create_app
from diaspora_service.request_id import RequestIdMiddleware
from notifications import SERVICE_NAME
from notifications.bootstrap import bootstrap, seed_templates
from notifications.campaigns import http as campaigns_http
from notifications.contacts import http as contacts_http
from notifications.deliveries import http as deliveries_http
from notifications.preferences import http as preferences_http
from notifications.resources import Notifications
from notifications.templates import http as templates_http

# In this order (the order of the OpenAPI document's paths).
ROUTERS = [
    deliveries_http.log_router,
    templates_http.router,
    preferences_http.router,
    contacts_http.me_router,
    deliveries_http.router,
    campaigns_http.router,
    contacts_http.router,
]


def build_app(service: Notifications | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = service is None
        app.state.service = service or bootstrap()
        app.state.identity = Identity.from_settings(app.state.service.settings)
        app.state.trusted_proxies = app.state.service.settings.trusted_proxies
        await seed_templates(app.state.service)
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
        routers=ROUTERS,
        lifespan=lifespan,
        readiness={"database": database_ready},
    )
    install_identity(application)
    application.add_middleware(RequestIdMiddleware)
    return application


def app() -> FastAPI:
    """Factory for `uvicorn --factory notifications.entrypoints.http:app`."""
    return build_app()
