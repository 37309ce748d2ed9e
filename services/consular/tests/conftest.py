from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from consular.bootstrap import bootstrap
from consular.entrypoints.http import build_app
from consular.resources import Consular
from consular.settings import ConsularSettings
from diaspora_devstack.testing import app_url, asyncpg_url, serve_app
from diaspora_documents.settings import StoreSettings
from diaspora_identity.testing import LocalIssuer

SettingsFactory = Callable[..., ConsularSettings]


@pytest.fixture(autouse=True)
def _events_in_clear(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """This suite reads the service's events back field by field, so they are written in
    clear unless a test is marked ``sealed`` (crypto-shredding is the libraries' and
    tests/test_crypto_shredding.py's business)."""
    if request.node.get_closest_marker("sealed") is None:
        monkeypatch.setenv("CONSULAR_EVENT_ENCRYPTION", "false")


@pytest.fixture
def make_settings(
    consular_database: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    identity_provider: LocalIssuer,
    tmp_path: Path,
) -> SettingsFactory:
    def make(**overrides: Any) -> ConsularSettings:
        values: dict[str, Any] = {
            "database_url": asyncpg_url(app_url(consular_database, "consular")),
            "kafka_bootstrap": kafka_bootstrap,
            "topic_prefix": topic_prefix,
            "environment": "test",
            "json_logs": False,
            "oidc_issuer": identity_provider.issuer,
            "oidc_audience": identity_provider.audience,
            "oidc_jwks_min_refresh_seconds": 0,
            # Uploaded documents in the test's own folder.
            "documents": StoreSettings(local_root=tmp_path / "documents"),
            **overrides,
        }
        return ConsularSettings(**values)

    return make


@pytest.fixture
async def consular(make_settings: SettingsFactory) -> AsyncIterator[Consular]:
    service = bootstrap(make_settings())
    yield service
    await service.close()


@pytest.fixture
async def consular_url(consular: Consular) -> AsyncIterator[str]:
    async with serve_app(build_app(consular)) as base_url:
        yield base_url


@pytest.fixture
async def http(consular_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=consular_url, timeout=10) as client:
        yield client
