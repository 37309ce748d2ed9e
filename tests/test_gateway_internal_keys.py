"""The registry's internal key service is not reachable through the gateway (real nginx
in front of the real registry): with a valid service token it answers directly, and
the gateway answers 404 for it, however the path is spelled."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from diaspora_devstack import stack
from diaspora_identity.testing import service_account
from tests.conftest import GatewayFactory, LocalPlatform, shared_platform

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
async def platform(infra: stack.Endpoints) -> AsyncIterator[LocalPlatform]:
    async with shared_platform(infra, "test_gateway_internal_keys") as running:
        yield running


async def test_the_key_service_answers_services_directly_and_never_through_the_gateway(
    platform: LocalPlatform, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway()
    service = platform.issuer.headers(service_account("notifications"))
    body = {"subject_ids": ["01890a5d-ac96-774b-bcce-b302099a8057"]}
    async with httpx.AsyncClient(timeout=15) as client:
        direct = await client.post(
            f"{platform.registry_url}/internal/keys", json=body, headers=service
        )
        assert direct.status_code == 200, direct.text
        assert direct.json()["keys"][0]["status"] == "active"
        for path in (
            "/api/registry/internal/keys",
            "/api/registry//internal/keys",
            "/api/registry/./internal/keys",
            "/api/registry/%69nternal/keys",
            "/api/registry/members/../internal/keys",
        ):
            through = await client.post(gateway.url + path, json=body, headers=service)
            assert through.status_code == 404, (path, through.status_code, through.text)
            assert "dek" not in through.text
