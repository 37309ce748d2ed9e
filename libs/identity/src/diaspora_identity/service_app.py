"""One way for a service to build its HTTP app from its resources and features' routers.

Every service's ``entrypoints/http.py`` is a list of routers and one call::

    def build_app(service: Consular | None = None) -> FastAPI:
        return service_app(SERVICE_NAME, given=service, bootstrap=bootstrap,
                           title="Consular", description="...", routers=ROUTERS)

The lifespan builds the resources (unless a test hands its own, which it then closes
itself), puts them on ``app.state.service`` with their identity and trusted proxies, sets
up logs and traces, runs the service's own start-up steps, and closes what it built.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Protocol, TypeVar

from fastapi import APIRouter, FastAPI

from diaspora_events.observability import setup_observability
from diaspora_identity.http import Identity, install_identity
from diaspora_service.app import create_app
from diaspora_service.request_id import RequestIdMiddleware
from diaspora_service.settings import ServiceSettings
from diaspora_service.uploads import UploadRoute


class ServiceResources(Protocol):
    """What the app needs of a service's handles (``<service>.resources``)."""

    @property
    def settings(self) -> ServiceSettings: ...

    @property
    def identity(self) -> Identity: ...

    async def database_ready(self) -> bool: ...

    async def close(self) -> None: ...


R = TypeVar("R", bound=ServiceResources)


def service_app(
    service_name: str,
    *,
    given: R | None,
    bootstrap: Callable[[], R],
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    version: str = "0.1.0",
    starting: Callable[[R], AbstractAsyncContextManager[None]] | None = None,
    uploads: Sequence[UploadRoute] = (),
    routers_after_identity: Sequence[APIRouter] = (),
) -> FastAPI:
    """The service's app. ``given``: resources a test built (not closed here);
    ``starting``: the service's own start-up steps, entered once the resources are on
    ``app.state.service`` and left before they close (seed data, a background chore);
    ``routers_after_identity``: routers included after the identity's handlers."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = given if given is not None else bootstrap()
        app.state.service = resources
        app.state.identity = resources.identity
        app.state.trusted_proxies = resources.settings.trusted_proxies
        setup_observability(service_name, json_logs=resources.settings.json_logs)
        try:
            async with starting(resources) if starting else nullcontext():
                yield
        finally:
            if given is None:
                await resources.close()

    async def database_ready() -> bool:
        ready: Awaitable[bool] = application.state.service.database_ready()
        return await ready

    application = create_app(
        title=title,
        version=version,
        description=description,
        routers=routers,
        lifespan=lifespan,
        readiness={"database": database_ready},
        uploads=uploads,
    )
    install_identity(application)
    for router in routers_after_identity:
        application.include_router(router)
    application.add_middleware(RequestIdMiddleware)
    return application
