from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from diaspora_devstack.testing import app_url, asyncpg_url, serve_app
from diaspora_identity.testing import LocalIssuer, citizen
from registry.bootstrap import bootstrap
from registry.entrypoints.http import build_app
from registry.resources import Registry
from registry.settings import RegistrySettings


@pytest.fixture(autouse=True)
def _events_in_clear(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """This suite checks the service's events field by field, so they are written in clear
    unless a test is marked ``sealed``; crypto-shredding itself is proven by the tests
    marked so and by tests/test_crypto_shredding.py (every process sealing, as deployed)."""
    if request.node.get_closest_marker("sealed") is None:
        monkeypatch.setenv("REGISTRY_EVENT_ENCRYPTION", "false")


@pytest.fixture
async def registry(
    registry_database: str, kafka_bootstrap: str, identity_provider: LocalIssuer
) -> AsyncIterator[Registry]:
    service = bootstrap(
        RegistrySettings(
            database_url=asyncpg_url(app_url(registry_database, "registry")),
            kafka_bootstrap=kafka_bootstrap,
            environment="test",
            json_logs=False,
            oidc_issuer=identity_provider.issuer,
            oidc_jwks_min_refresh_seconds=0,
        )
    )
    yield service
    await service.close()


@pytest.fixture
async def registry_url(registry: Registry) -> AsyncIterator[str]:
    async with serve_app(build_app(registry)) as base_url:
        yield base_url


@pytest.fixture
async def registry_client(
    registry_url: str, identity_provider: LocalIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    """A client acting as one citizen (self-registration, own record)."""
    async with httpx.AsyncClient(
        base_url=registry_url,
        timeout=10,
        headers=identity_provider.headers(citizen("citizen-of-the-suite")),
    ) as client:
        yield client


@pytest.fixture
async def anonymous(registry_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=registry_url, timeout=10) as client:
        yield client
