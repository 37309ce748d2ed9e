"""The registry's HTTP process: the app built from the features' routers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from diaspora_identity.http import upload_authorizer
from diaspora_identity.service_app import service_app
from diaspora_service.db import retry_until_reachable
from diaspora_service.uploads import UploadRoute
from registry import SERVICE_NAME, heap
from registry.access_log import http as access_log
from registry.associations import http as associations
from registry.bootstrap import bootstrap, reconcile_job
from registry.duplicate_review import http as duplicate_review
from registry.freshness import http as freshness
from registry.identity import http as identity
from registry.imports import http as imports
from registry.imports.settings import ImportSettings
from registry.keys import http as keys
from registry.members import domain
from registry.members import http as members
from registry.reference import http as reference
from registry.resources import Registry
from registry.rights import http as rights
from registry.search import http as search
from registry.statistics import http as statistics

# The features' routers, in this order (it is also the order of the OpenAPI document).
# Search first: members' /members/{member_id} would otherwise take /members/search.
ROUTERS: tuple[APIRouter, ...] = (
    search.router,
    statistics.router,
    freshness.router,
    members.router,
    access_log.router,
    rights.router,
    identity.router,
    reference.router,
)
# Included once the identity is installed, as they always were.
LATER_ROUTERS: tuple[APIRouter, ...] = (
    associations.router,
    imports.router,  # its lifespan runs the import runner
    duplicate_review.router,
    keys.router,  # internal: not routed by the gateway
)


def build_app(registry: Registry | None = None) -> FastAPI:
    @asynccontextmanager
    async def starting(resources: Registry) -> AsyncIterator[None]:
        # Reference data loaded now, and out of the garbage collector's walks from here on.
        domain.warm_up()
        heap.freeze_long_lived()
        # In the background: the API starts (and reports "not ready") while the database
        # is down; until the chore has run, members and associations keep the embassy
        # derived under the previous jurisdictions file.
        reconciling = asyncio.create_task(
            retry_until_reachable("reconcile_embassies", reconcile_job(resources))
        )
        try:
            yield
        finally:
            reconciling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reconciling

    return service_app(
        SERVICE_NAME,
        given=registry,
        bootstrap=bootstrap,
        title="Registry (RECOATEX)",
        description="Members of the Togolese diaspora: registration and profiles. "
        "Every call needs an OIDC bearer token; what it returns depends on the caller's "
        "roles and scopes (docs/security.md).",
        routers=ROUTERS,
        starting=starting,
        # Authorized from the headers before a byte of the file is read, and capped.
        uploads=[
            UploadRoute(
                "POST",
                "/imports",
                upload_authorizer("member_import", "create"),
                ImportSettings().max_bytes,
            )
        ],
        routers_after_identity=LATER_ROUTERS,
    )


def app() -> FastAPI:
    """Factory for `uvicorn --factory registry.entrypoints.http:app`."""
    return build_app()
