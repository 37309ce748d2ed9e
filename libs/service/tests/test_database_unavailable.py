"""A database that is down or saturated is a 503 with Retry-After, never a 500."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from diaspora_devstack.testing import asyncpg_url, wait_until
from diaspora_service.app import create_app


def _app(engine: AsyncEngine) -> httpx.AsyncClient:
    router = APIRouter()

    @router.get("/count")
    async def count() -> dict[str, int]:
        async with engine.connect() as connection:
            value = await connection.scalar(text("select count(*) from pg_class"))
        return {"count": int(value or 0)}

    @router.get("/hold")
    async def hold() -> dict[str, bool]:
        async with engine.connect() as connection:
            await connection.execute(text("select pg_sleep(2)"))
        return {"held": True}

    app = create_app(title="t", version="1", description="d", routers=[router])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"] == "5"
    assert "database" in response.json()["detail"]


@pytest.fixture
async def engine_factory() -> AsyncIterator[Callable[..., AsyncEngine]]:
    engines: list[AsyncEngine] = []

    def make(url: str, **options: object) -> AsyncEngine:
        engines.append(create_async_engine(url, **options))  # type: ignore[arg-type]
        return engines[-1]

    yield make
    for engine in engines:
        await engine.dispose()


async def test_an_unreachable_database_is_503(
    engine_factory: Callable[..., AsyncEngine],
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = engine_factory(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/none")
    async with _app(engine) as client:
        _assert_unavailable(await client.get("/count"))


@pytest.mark.integration
async def test_a_saturated_pool_is_503_and_the_service_recovers(
    empty_database: str, engine_factory: Callable[..., AsyncEngine]
) -> None:
    engine = engine_factory(
        asyncpg_url(empty_database), pool_size=1, max_overflow=0, pool_timeout=0.2
    )
    async with _app(engine) as client:
        holding = asyncio.create_task(client.get("/hold"))
        # Once /hold has the only connection of the pool:
        await wait_until(lambda: engine.pool.checkedout() == 1, message="/hold to hold it")
        _assert_unavailable(await client.get("/count"))
        assert (await holding).json() == {"held": True}
        assert (await client.get("/count")).status_code == 200
