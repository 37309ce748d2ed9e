"""Liveness, readiness and metrics over HTTP for processes without an API (relays, workers)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import uvicorn
from fastapi import FastAPI

from diaspora_service.app import ReadinessCheck, add_health_and_metrics


def health_app(readiness: dict[str, ReadinessCheck]) -> FastAPI:
    app = FastAPI(title="health", docs_url=None, redoc_url=None, openapi_url=None)
    add_health_and_metrics(app, readiness)
    return app


def health_task(
    *, host: str, port: int, readiness: dict[str, ReadinessCheck]
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    """A task for ``run_until_stopped`` serving /health/live, /health/ready and /metrics."""

    async def serve(stop: asyncio.Event) -> None:
        server = uvicorn.Server(
            uvicorn.Config(
                health_app(readiness),
                host=host,
                port=port,
                log_level="warning",
                access_log=False,
                lifespan="off",
            )
        )
        # serve() would take over SIGTERM/SIGINT; the worker's loop handles them and
        # stops this server through `stop`, so run the signal-free body.
        task = asyncio.create_task(server._serve())
        await stop.wait()
        server.should_exit = True
        await task

    return serve
