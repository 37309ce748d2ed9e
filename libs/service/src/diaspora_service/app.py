"""The FastAPI application every service builds: problem details, health, tracing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, cast

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from diaspora_service.problems import PROBLEM_JSON, install_problem_handlers
from diaspora_service.uploads import UploadGuard, UploadRoute

ReadinessCheck = Callable[[], Awaitable[bool]]

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "Validation error (RFC 9457 problem details)",
        "content": {PROBLEM_JSON: {}},
    },
}


def create_app(
    *,
    title: str,
    version: str,
    description: str,
    routers: Sequence[APIRouter],
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    readiness: dict[str, ReadinessCheck] | None = None,
    uploads: Sequence[UploadRoute] = (),
) -> FastAPI:
    """The service's app. ``uploads``: routes whose body is an upload, authorized from the
    headers before any of the body is read, and capped (:mod:`diaspora_service.uploads`)."""
    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=lifespan,
        responses=PROBLEM_RESPONSES,
    )
    install_problem_handlers(app)
    add_health_and_metrics(app, readiness or {})
    app.add_middleware(UploadGuard, routes=uploads)
    app.add_middleware(_LatencyMiddleware)
    app.add_middleware(ForwardedClientMiddleware)

    for router in routers:
        app.include_router(router)
    # One server span per request; not the ASGI "send"/"receive" spans (two or three
    # more per request, built and dropped, that say nothing the server span does not).
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="health/.*,metrics", exclude_spans=["receive", "send"]
    )
    return app


LOOPBACK = ("127.0.0.1", "::1")


class ForwardedClientMiddleware:
    """The client address and scheme from X-Forwarded-For/-Proto, only when the peer is a
    trusted proxy: ``app.state.trusted_proxies`` (the service's ``TRUSTED_PROXIES``, set
    by its lifespan), loopback until then. Anyone else's headers are ignored: the audit
    trail and everything else see the real peer. (uvicorn runs with --no-proxy-headers.)
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # uvicorn's middleware, typed for its own ASGI types (the same protocol).
        self._by_list: dict[tuple[str, ...], ASGIApp] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        state = getattr(scope.get("app"), "state", None)
        trusted = tuple(getattr(state, "trusted_proxies", None) or LOOPBACK)
        inner: ASGIApp | None = self._by_list.get(trusted)
        if inner is None:
            inner = cast(ASGIApp, ProxyHeadersMiddleware(cast(Any, self.app), list(trusted)))
            self._by_list[trusted] = inner
        await inner(scope, receive, send)


HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


class _LatencyMiddleware:
    """Request latency by route template and status, as plain ASGI middleware.

    (Starlette's ``BaseHTTPMiddleware`` runs every request through an anyio task
    group and memory streams: about a tenth of the registry API's CPU per request.)
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            # The template (/members/{member_id}), never the concrete path: bounded
            # labels, no ids. Routing puts the matched route in the (shared) scope.
            template = getattr(scope.get("route"), "path", "unmatched")
            HTTP_LATENCY.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )


def add_health_and_metrics(app: FastAPI, checks: dict[str, ReadinessCheck]) -> None:
    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/health/ready", tags=["health"])
    async def ready() -> JSONResponse:
        """Readiness: every dependency answers (503 with the failing checks otherwise)."""
        results = {}
        for name, check in checks.items():
            try:
                async with asyncio.timeout(5):
                    results[name] = await check()
            except Exception:
                results[name] = False
        ok = all(results.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": results},
            status_code=200 if ok else 503,
        )

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus metrics of this process."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def no_lifespan(_app: FastAPI) -> AsyncIterator[None]:
    yield
