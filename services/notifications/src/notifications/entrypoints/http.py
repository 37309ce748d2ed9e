"""The notifications service's HTTP interface: the feature routers, in one app.

Every call but an email's confirmation link needs a bearer token; the policy table
(diaspora_identity ``policy.yaml``) decides, in each feature's ``http.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from diaspora_identity.service_app import service_app
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
    async def starting(resources: Notifications) -> AsyncIterator[None]:
        await seed_templates(resources)
        yield

    return service_app(
        SERVICE_NAME,
        given=service,
        bootstrap=bootstrap,
        title="Notifications",
        description=(
            "Messages to members: templates, channels (email, SMS, in-app inbox), "
            "preferences, delivery log, campaigns."
        ),
        routers=ROUTERS,
        starting=starting,
    )


def app() -> FastAPI:
    """Factory for `uvicorn --factory notifications.entrypoints.http:app`."""
    return build_app()
