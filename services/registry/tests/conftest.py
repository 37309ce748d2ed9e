from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from diaspora_devstack.testing import asyncpg_url, serve_app
from registry.bootstrap import Registry, bootstrap
from registry.entrypoints.http import build_app
from registry.settings import RegistrySettings


@pytest.fixture
async def registry(registry_database: str, kafka_bootstrap: str) -> AsyncIterator[Registry]:
    service = bootstrap(
        RegistrySettings(
            database_url=asyncpg_url(registry_database),
            kafka_bootstrap=kafka_bootstrap,
            environment="test",
            json_logs=False,
        )
    )
    yield service
    await service.close()


@pytest.fixture
async def registry_client(registry: Registry) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serve_app(build_app(registry)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
    ):
        yield client
