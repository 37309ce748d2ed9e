"""Trusted proxies are a configured list (issue 15, item 10).

A service takes the client address from ``X-Forwarded-For`` only when the peer is one of
``<PREFIX>_TRUSTED_PROXIES`` (loopback by default); the gateway takes it only from the
addresses in its own list (``set_real_ip_from``), none by default: it is the edge. A forged
``X-Forwarded-For`` from anyone else is ignored by the audit trail and the rate limits.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from diaspora_devstack.testing import asyncpg_url, free_port, wait_until
from diaspora_identity.testing import LocalIssuer, admin, officer
from registry.bootstrap import bootstrap
from registry.entrypoints.http import build_app
from registry.settings import RegistrySettings
from tests.conftest import GatewayFactory, LocalPlatform

pytestmark = [pytest.mark.integration]

MEMBER = {
    "given_name": "Kossi",
    "family_name": "Agbeko",
    "date_of_birth": "1985-03-14",
    "country_of_residence": "BE",
    "email": "kossi.agbeko@example.be",
    "phone": "+32470123457",
    "consent_recorded": {"method": "signed_form"},
}
FORGED = "203.0.113.7"


@asynccontextmanager
async def registry_api(
    registry_database: str, identity_provider: LocalIssuer, **settings: Any
) -> AsyncIterator[str]:
    """The registry API as deployed: uvicorn with ``--no-proxy-headers`` (the app decides)."""
    service = bootstrap(
        RegistrySettings(
            database_url=asyncpg_url(registry_database),
            environment="test",
            json_logs=False,
            oidc_issuer=identity_provider.issuer,
            **settings,
        )
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(service),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            proxy_headers=False,
        )
    )
    import asyncio

    task = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started, timeout=30, message="uvicorn")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        await service.close()


async def audited_address(registry_database: str, request_id: str) -> list[str | None]:
    engine = create_async_engine(asyncpg_url(registry_database))
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT client_address FROM audit_log WHERE request_id = :id"),
                {"id": request_id},
            )
            return [row.client_address for row in rows]
    finally:
        await engine.dispose()


async def register(url: str, issuer: LocalIssuer, request_id: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        response = await client.post(
            "/members",
            json={**MEMBER, "email": f"{request_id}@example.be"},
            headers={
                **issuer.headers(officer("be-brussels")),
                "X-Forwarded-For": FORGED,
                "X-Request-ID": request_id,
            },
        )
        assert response.status_code == 201, response.text


async def test_a_forged_forwarded_for_from_an_untrusted_peer_is_not_the_client_address(
    registry_database: str, identity_provider: LocalIssuer
) -> None:
    # The peer (loopback) is not in the list: the audit names the peer, not the claim.
    async with registry_api(
        registry_database, identity_provider, trusted_proxies="10.20.0.0/16"
    ) as url:
        untrusted = f"untrusted-{uuid.uuid4().hex[:8]}"
        await register(url, identity_provider, untrusted)
    assert await audited_address(registry_database, untrusted) == ["127.0.0.1"]

    # The same request from a listed proxy: the address it forwards is the client's.
    async with registry_api(
        registry_database, identity_provider, trusted_proxies="10.20.0.0/16,127.0.0.1"
    ) as url:
        trusted = f"trusted-{uuid.uuid4().hex[:8]}"
        await register(url, identity_provider, trusted)
    assert await audited_address(registry_database, trusted) == [FORGED]


def test_the_trusted_proxies_setting_is_a_list_of_addresses_and_networks() -> None:
    settings = RegistrySettings(
        database_url="postgresql://x", environment="test", trusted_proxies="10.0.0.0/8, ::1"
    )
    assert settings.trusted_proxies == ("10.0.0.0/8", "::1")
    assert RegistrySettings(database_url="postgresql://x", environment="test").trusted_proxies == (
        "127.0.0.1",
        "::1",
    )
    with pytest.raises(ValueError, match="not an address"):
        RegistrySettings(
            database_url="postgresql://x", environment="test", trusted_proxies="gateway"
        )
    with pytest.raises(ValueError, match="everyone"):
        RegistrySettings(database_url="postgresql://x", environment="test", trusted_proxies="*")


async def test_the_gateway_rate_limits_the_real_peer_not_a_forged_forwarded_for(
    platform: LocalPlatform, start_gateway: GatewayFactory
) -> None:
    limits: dict[str, Any] = {"rate_per_address": "1r/m", "burst_per_address": 5}
    headers = platform.issuer.headers(admin())

    async def statuses(url: str) -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=15) as client:
            return [
                (
                    await client.get(
                        "/api/registry/health/live",
                        headers={**headers, "X-Forwarded-For": f"198.51.100.{n}"},
                    )
                ).status_code
                for n in range(10)
            ]

    # The edge (no trusted proxies): ten "different" clients are one address: limited.
    edge = await start_gateway(**limits)
    assert 429 in await statuses(edge.url)
    # Behind a listed load balancer (here: loopback), each forwarded address counts alone.
    behind = await start_gateway(**limits, trusted_proxies=("127.0.0.1",))
    assert await statuses(behind.url) == [200] * 10

    # Through the edge gateway, the service's audit names the gateway's peer, not the claim.
    request_id = f"edge-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=(await start_gateway()).url, timeout=15) as client:
        response = await client.post(
            "/api/registry/members",
            json={**MEMBER, "email": f"{request_id}@example.be"},
            headers={
                **platform.issuer.headers(officer("be-brussels")),
                "X-Forwarded-For": FORGED,
                "X-Request-ID": request_id,
            },
        )
        assert response.status_code == 201, response.text
    assert await audited_address(platform.registry_database, request_id) == ["127.0.0.1"]
