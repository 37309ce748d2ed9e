from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from diaspora_devstack.testing import app_url, asyncpg_url, serve_app
from diaspora_identity.testing import LocalIssuer
from matching.bootstrap import bootstrap
from matching.entrypoints.http import build_app
from matching.resources import Matching
from matching.settings import MatchingSettings

SettingsFactory = Callable[..., MatchingSettings]


@pytest.fixture(autouse=True)
def _events_in_clear(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """This suite checks the service's events field by field, so they are written in clear
    unless a test is marked ``sealed``; crypto-shredding itself is proven by the tests
    marked so and by tests/test_crypto_shredding.py (every process sealing, as deployed)."""
    if request.node.get_closest_marker("sealed") is None:
        monkeypatch.setenv("MATCHING_EVENT_ENCRYPTION", "false")


@pytest.fixture
def make_settings(
    matching_database: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    identity_provider: LocalIssuer,
) -> SettingsFactory:
    def make(**overrides: Any) -> MatchingSettings:
        values: dict[str, Any] = {
            "database_url": asyncpg_url(app_url(matching_database, "matching")),
            "kafka_bootstrap": kafka_bootstrap,
            "topic_prefix": topic_prefix,
            "environment": "test",
            "json_logs": False,
            "oidc_issuer": identity_provider.issuer,
            "oidc_audience": identity_provider.audience,
            "oidc_jwks_min_refresh_seconds": 0,
            **overrides,
        }
        return MatchingSettings(**values)

    return make


@pytest.fixture
async def matching(make_settings: SettingsFactory) -> AsyncIterator[Matching]:
    service = bootstrap(make_settings())
    yield service
    await service.close()


@pytest.fixture
async def matching_url(matching: Matching) -> AsyncIterator[str]:
    async with serve_app(build_app(matching)) as base_url:
        yield base_url


@pytest.fixture
async def anonymous(matching_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=matching_url, timeout=10) as client:
        yield client
