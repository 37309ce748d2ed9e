from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from diaspora_devstack.mailbox import Mailbox
from diaspora_devstack.testing import app_url, asyncpg_url, serve_app
from diaspora_identity.testing import LocalIssuer
from notifications.bootstrap import bootstrap
from notifications.entrypoints.http import build_app
from notifications.resources import Notifications
from notifications.settings import NotificationsSettings

SettingsFactory = Callable[..., NotificationsSettings]


@pytest.fixture(autouse=True)
def _events_in_clear(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """This suite checks the service's events field by field, so they are written in clear
    unless a test is marked ``sealed``; crypto-shredding itself is proven by the tests
    marked so and by tests/test_crypto_shredding.py (every process sealing, as deployed)."""
    if request.node.get_closest_marker("sealed") is None:
        monkeypatch.setenv("NOTIFICATIONS_EVENT_ENCRYPTION", "false")


@pytest.fixture
def make_settings(
    notifications_database: str, kafka_bootstrap: str, topic_prefix: str, mailbox: Mailbox
) -> SettingsFactory:
    def make(**overrides: Any) -> NotificationsSettings:
        values: dict[str, Any] = {
            # The service connects as its runtime role, as it does when deployed.
            "database_url": asyncpg_url(app_url(notifications_database, "notifications")),
            "kafka_bootstrap": kafka_bootstrap,
            "topic_prefix": topic_prefix,
            "environment": "test",
            "smtp_port": mailbox.port,
            "json_logs": False,
            "retry_first_delay": 0.2,
            **overrides,
        }
        return NotificationsSettings(**values)

    return make


@pytest.fixture
async def notifications(make_settings: SettingsFactory) -> AsyncIterator[Notifications]:
    service = bootstrap(make_settings())
    yield service
    await service.close()


@pytest.fixture
async def api_service(
    make_settings: SettingsFactory, identity_provider: LocalIssuer
) -> AsyncIterator[Notifications]:
    """A service whose HTTP side trusts the test's identity provider."""
    service = bootstrap(
        make_settings(
            oidc_issuer=identity_provider.issuer,
            oidc_audience=identity_provider.audience,
            oidc_jwks_min_refresh_seconds=0,
        )
    )
    yield service
    await service.close()


@pytest.fixture
async def client(api_service: Notifications) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of ``api_service``'s app, served on a free port."""
    async with (
        serve_app(build_app(api_service)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):
        yield http
