"""The platform as real processes, pointed at fresh databases and a fresh topic prefix."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from diaspora_devstack.mailbox import Mailbox
from diaspora_devstack.testing import ServiceProcess, free_port, service_env, wait_until


@dataclass
class LocalPlatform:
    registry_url: str
    kafka_bootstrap: str
    topic_prefix: str
    registry_database: str
    notifications_database: str
    mailbox: Mailbox
    processes: dict[str, ServiceProcess]

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
) -> Iterator[LocalPlatform]:
    port = free_port()
    registry_env = service_env(
        "REGISTRY", database_url=registry_database, kafka=kafka_bootstrap, topic_prefix=topic_prefix
    )
    notifications_env = service_env(
        "NOTIFICATIONS",
        database_url=notifications_database,
        kafka=kafka_bootstrap,
        topic_prefix=topic_prefix,
        extra={"NOTIFICATIONS_SMTP_PORT": str(mailbox.port)},
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
        "notifications-worker": ServiceProcess(
            "notifications-worker",
            ["notifications-worker"],
            notifications_env,
            test_logs / "notifications-worker.log",
        ),
    }
    for process in processes.values():
        process.start()
    platform = LocalPlatform(
        registry_url=f"http://127.0.0.1:{port}",
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        registry_database=registry_database,
        notifications_database=notifications_database,
        mailbox=mailbox,
        processes=processes,
    )
    try:
        yield platform
    finally:
        for process in platform.processes.values():
            process.stop()


@pytest.fixture
async def platform(platform_processes: LocalPlatform) -> LocalPlatform:
    """The running platform, once the registry answers."""

    async def registry_up() -> bool:
        try:
            async with httpx.AsyncClient() as client:
                response = await client.get(f"{platform_processes.registry_url}/health/ready")
                return response.status_code == 200
        except httpx.HTTPError:
            return False

    await wait_until(registry_up, timeout=30, message="the registry API")
    return platform_processes
