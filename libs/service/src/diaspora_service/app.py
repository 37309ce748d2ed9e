"""The FastAPI application every service builds: problem details, health, tracing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from diaspora_service.problems import PROBLEM_JSON, install_problem_handlers

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
) -> FastAPI:
    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=lifespan,
        responses=PROBLEM_RESPONSES,
    )
    install_problem_handlers(app)
    checks = readiness or {}

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/health/ready", tags=["health"])
    async def ready() -> JSONResponse:
        """Readiness: every dependency answers."""
        results = {}
        for name, check in checks.items():
            try:
                results[name] = await check()
            except Exception:
                results[name] = False
        ok = all(results.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": results},
            status_code=200 if ok else 503,
        )

    for router in routers:
        app.include_router(router)
    FastAPIInstrumentor.instrument_app(app, excluded_urls="health/.*")
    return app


async def no_lifespan(_app: FastAPI) -> AsyncIterator[None]:
    yield
