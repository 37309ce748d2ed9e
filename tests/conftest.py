"""The platform as real processes, pointed at fresh databases and a fresh topic prefix."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from diaspora_devstack import gateway as gw
from diaspora_devstack.config import StackConfig
from diaspora_devstack.mailbox import Mailbox
from diaspora_devstack.testing import ServiceProcess, free_port, service_env, wait_until
from diaspora_identity.testing import LocalIssuer


@dataclass
class LocalPlatform:
    registry_url: str
    notifications_url: str
    kafka_bootstrap: str
    topic_prefix: str
    registry_database: str
    notifications_database: str
    mailbox: Mailbox
    processes: dict[str, ServiceProcess]
    issuer: LocalIssuer

    def restart(self, name: str) -> None:
        old = self.processes[name]
        self.processes[name] = ServiceProcess(
            name=name, command=old.command, env=old.env, log_path=old.log_path
        ).start()


@pytest.fixture
def platform_processes(
    registry_database: str,
    notifications_database: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    mailbox: Mailbox,
    test_logs: Path,
    identity_provider: LocalIssuer,
) -> Iterator[LocalPlatform]:
    port = free_port()
    notifications_port = free_port()
    registry_env = service_env(
        "REGISTRY",
        database_url=registry_database,
        kafka=kafka_bootstrap,
        topic_prefix=topic_prefix,
        extra=identity_provider.service_env("REGISTRY"),
    )
    notifications_env = service_env(
        "NOTIFICATIONS",
        database_url=notifications_database,
        kafka=kafka_bootstrap,
        topic_prefix=topic_prefix,
        extra={
            "NOTIFICATIONS_SMTP_PORT": str(mailbox.port),
            **identity_provider.service_env("NOTIFICATIONS"),
        },
    )
    processes = {
        "registry-api": ServiceProcess(
            "registry-api",
            [
                "uvicorn",
                "--factory",
                "registry.entrypoints.http:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
            ],
            registry_env,
            test_logs / "registry-api.log",
        ),
        "registry-relay": ServiceProcess(
            "registry-relay", ["registry-relay"], registry_env, test_logs / "registry-relay.log"
        ),
        "registry-worker": ServiceProcess(
            "registry-worker", ["registry-worker"], registry_env, test_logs / "registry-worker.log"
        ),
        "notifications-worker": ServiceProcess(
            "notifications-worker",
            ["notifications-worker"],
            notifications_env,
            test_logs / "notifications-worker.log",
        ),
        "notifications-api": ServiceProcess(
            "notifications-api",
            [
                "uvicorn",
                "--factory",
                "notifications.entrypoints.http:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(notifications_port),
                "--no-access-log",
            ],
            notifications_env,
            test_logs / "notifications-api.log",
        ),
    }
    for process in processes.values():
        process.start()
    platform = LocalPlatform(
        registry_url=f"http://127.0.0.1:{port}",
        notifications_url=f"http://127.0.0.1:{notifications_port}",
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        registry_database=registry_database,
        notifications_database=notifications_database,
        mailbox=mailbox,
        processes=processes,
        issuer=identity_provider,
    )
    try:
        yield platform
    finally:
        for process in platform.processes.values():
            process.stop()


@pytest.fixture
async def platform(platform_processes: LocalPlatform) -> LocalPlatform:
    """The running platform, once its HTTP APIs answer."""
    for url in (platform_processes.registry_url, platform_processes.notifications_url):
        await wait_until(lambda url=url: answers(f"{url}/health/ready"), timeout=60, message=url)
    return platform_processes


async def answers(url: str) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Gateway:
    url: str
    settings: gw.GatewaySettings
    process: ServiceProcess
    access_log: Path


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def start_gateway(platform: LocalPlatform, test_logs: Path) -> AsyncIterator[GatewayFactory]:
    """Starts real nginx (rendered from deploy/local/nginx) in front of the platform's APIs."""
    cfg = StackConfig.from_env()
    started: list[Gateway] = []

    async def start(**overrides: object) -> Gateway:
        port = free_port()
        settings = gw.GatewaySettings(
            listen=f"127.0.0.1:{port}",
            upstreams={
                "registry": platform.registry_url.removeprefix("http://"),
                "notifications": platform.notifications_url.removeprefix("http://"),
                # Not part of this platform fixture: nothing listens there (503 problem).
                "matching": f"127.0.0.1:{free_port()}",
            },
            name=f"gateway-test-{port}",
            **overrides,  # type: ignore[arg-type]
        )
        conf = gw.prepare(cfg, settings)
        process = ServiceProcess(
            settings.name, gw.command(cfg, settings, conf), {}, test_logs / f"{settings.name}.log"
        ).start()
        gateway = Gateway(
            f"http://127.0.0.1:{port}", settings, process, gw.access_log(cfg, settings)
        )
        started.append(gateway)
        await wait_until(lambda: answers(f"{gateway.url}/health"), timeout=15, message="nginx")
        return gateway

    yield start
    for gateway in started:
        gateway.process.stop()
        # Its rendered configuration and temp folders; the access log stays in .local/log.
        shutil.rmtree(gw.prefix_dir(cfg, gateway.settings), ignore_errors=True)
