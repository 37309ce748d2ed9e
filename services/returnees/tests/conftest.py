from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from diaspora_devstack.testing import app_url, asyncpg_url, serve_app
from diaspora_identity.testing import LocalIssuer
from returnees.bootstrap import bootstrap
from returnees.entrypoints.http import build_app
from returnees.resources import Returnees
from returnees.settings import ReturneesSettings

SettingsFactory = Callable[..., ReturneesSettings]


@pytest.fixture(autouse=True)
def _events_in_clear(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """This suite reads the service's events back field by field, so they are written in
    clear unless a test is marked ``sealed`` (crypto-shredding is the libraries' and
    tests/test_crypto_shredding.py's business)."""
    if request.node.get_closest_marker("sealed") is None:
        monkeypatch.setenv("RETURNEES_EVENT_ENCRYPTION", "false")


@pytest.fixture
def make_settings(
    returnees_database: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    identity_provider: LocalIssuer,
) -> SettingsFactory:
    def make(**overrides: Any) -> ReturneesSettings:
        values: dict[str, Any] = {
            "database_url": asyncpg_url(app_url(returnees_database, "returnees")),
            "kafka_bootstrap": kafka_bootstrap,
            "topic_prefix": topic_prefix,
            "environment": "test",
            "json_logs": False,
            "oidc_issuer": identity_provider.issuer,
            "oidc_audience": identity_provider.audience,
            "oidc_jwks_min_refresh_seconds": 0,
            **overrides,
        }
        return ReturneesSettings(**values)

    return make


@pytest.fixture
async def returnees(make_settings: SettingsFactory) -> AsyncIterator[Returnees]:
    service = bootstrap(make_settings())
    yield service
    await service.close()


@pytest.fixture
async def returnees_url(returnees: Returnees) -> AsyncIterator[str]:
    async with serve_app(build_app(returnees)) as base_url:
        yield base_url


@pytest.fixture
async def http(returnees_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=returnees_url, timeout=10) as client:
        yield client
