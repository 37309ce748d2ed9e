"""The registry's internal key service is not reachable through the gateway (real nginx,
rendered from deploy/local/nginx, in front of the real registry API): with a valid
service token it answers directly, and the gateway answers 404 for it, however the path
is spelled."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from diaspora_devstack import gateway as gw
from diaspora_devstack.config import StackConfig
from diaspora_devstack.testing import (
    ServiceProcess,
    answers,
    api_command,
    free_port,
    service_env,
    wait_until,
)
from diaspora_identity.testing import LocalIssuer, service_account

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]


@dataclass
class Edge:
    registry_url: str
    gateway_url: str


@pytest.fixture
async def edge(
    registry_database: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    identity_provider: LocalIssuer,
    test_logs: Path,
    tmp_path: Path,
) -> AsyncIterator[Edge]:
    port = free_port()
    env = service_env(
        "REGISTRY",
        database_url=registry_database,
        kafka=kafka_bootstrap,
        topic_prefix=topic_prefix,
        issuer=identity_provider,
        extra={"REGISTRY_EVENT_KEK_FILE": str(tmp_path / "kek.key")},
    )
    api = ServiceProcess(
        "registry-api", api_command("registry", port), env, test_logs / "registry-api.log"
    ).start()
    cfg = StackConfig.from_env()
    gateway_port = free_port()
    settings = gw.GatewaySettings(
        listen=f"127.0.0.1:{gateway_port}",
        upstreams={
            "registry": f"127.0.0.1:{port}",
            "notifications": f"127.0.0.1:{free_port()}",
            "matching": f"127.0.0.1:{free_port()}",
            "consular": f"127.0.0.1:{free_port()}",
            "returnees": f"127.0.0.1:{free_port()}",
        },
        name=f"gateway-test-{gateway_port}",
    )
    conf = gw.prepare(cfg, settings)
    nginx = ServiceProcess(
        settings.name, gw.command(cfg, settings, conf), {}, test_logs / f"{settings.name}.log"
    ).start()
    try:
        registry_url = f"http://127.0.0.1:{port}"
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        await wait_until(
            lambda: answers(f"{registry_url}/health/live"), timeout=240, message="registry"
        )
        await wait_until(lambda: answers(f"{gateway_url}/health"), timeout=30, message="nginx")
        yield Edge(registry_url, gateway_url)
    finally:
        nginx.stop()
        api.stop()
        shutil.rmtree(gw.prefix_dir(cfg, settings), ignore_errors=True)


async def test_the_key_service_answers_services_directly_and_never_through_the_gateway(
    edge: Edge, identity_provider: LocalIssuer
) -> None:
    service = identity_provider.headers(service_account("notifications"))
    body = {"subject_ids": ["01890a5d-ac96-774b-bcce-b302099a8057"]}
    async with httpx.AsyncClient(timeout=15) as client:
        direct = await client.post(f"{edge.registry_url}/internal/keys", json=body, headers=service)
        assert direct.status_code == 200, direct.text
        assert direct.json()["keys"][0]["status"] == "active"
        # The rest of the registry is routed (the 404 below is not a dead gateway).
        routed = await client.get(f"{edge.gateway_url}/api/registry/health/live")
        assert routed.status_code == 200, routed.text
        for path in (
            "/api/registry/internal/keys",
            "/api/registry//internal/keys",
            "/api/registry/%69nternal/keys",
            "/api/registry/internal/keys/",
            "/api/registry/INTERNAL/keys",
        ):
            through = await client.post(edge.gateway_url + path, json=body, headers=service)
            assert through.status_code == 404, (path, through.status_code, through.text)
            assert "dek" not in through.text
