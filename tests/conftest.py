"""The platform as real processes, pointed at fresh databases and a fresh topic prefix."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from diaspora_devstack import gateway as gw
from diaspora_devstack import stack
from diaspora_devstack.config import StackConfig
from diaspora_devstack.mailbox import Mailbox
from diaspora_devstack.pytest_plugin import migrated_template
from diaspora_devstack.testing import (
    ServiceProcess,
    answers,
    api_command,
    app_url,
    asyncpg_url,
    create_database,
    delete_topics_with_prefix,
    drop_database,
    free_port,
    serve_app,
    service_env,
    unique_name,
    wait_until,
)
from diaspora_identity.testing import DEV_SERVICE_CLIENTS, LocalIssuer
from registry.settings import RegistrySettings


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
    # Consular's API, relay and worker, when the platform was started with a consular
    # database (``consular_platform``); None otherwise.
    consular_url: str | None = None
    consular_database: str | None = None

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
    with running_platform(
        registry_database,
        notifications_database,
        kafka_bootstrap,
        topic_prefix,
        mailbox,
        test_logs,
        identity_provider,
    ) as platform:
        yield platform


@pytest.fixture
def consular_platform_processes(
    registry_database: str,
    notifications_database: str,
    consular_database: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    mailbox: Mailbox,
    test_logs: Path,
    identity_provider: LocalIssuer,
) -> Iterator[LocalPlatform]:
    with running_platform(
        registry_database,
        notifications_database,
        kafka_bootstrap,
        topic_prefix,
        mailbox,
        test_logs,
        identity_provider,
        consular_database=consular_database,
    ) as platform:
        yield platform


@pytest.fixture
async def consular_platform(consular_platform_processes: LocalPlatform) -> LocalPlatform:
    """The platform with consular's API, relay and worker too, once its APIs answer."""
    return await answering(consular_platform_processes)


@contextmanager
def running_platform(
    registry_database: str,
    notifications_database: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    mailbox: Mailbox,
    test_logs: Path,
    identity_provider: LocalIssuer,
    *,
    consular_database: str | None = None,
) -> Iterator[LocalPlatform]:
    """The registry's and notifications' processes (and consular's, given its database),
    stopped on exit."""
    port = free_port()
    notifications_port = free_port()
    consular_port = free_port()
    registry_env = service_env(
        "REGISTRY",
        database_url=registry_database,
        kafka=kafka_bootstrap,
        topic_prefix=topic_prefix,
        issuer=identity_provider,
    )
    notifications_env = service_env(
        "NOTIFICATIONS",
        database_url=notifications_database,
        kafka=kafka_bootstrap,
        topic_prefix=topic_prefix,
        issuer=identity_provider,
        # Persons' data keys from this platform's registry (crypto-shredding).
        event_keys_from=f"http://127.0.0.1:{port}",
        extra={"NOTIFICATIONS_SMTP_PORT": str(mailbox.port)},
    )
    processes = {
        "registry-api": ServiceProcess(
            "registry-api",
            api_command("registry", port),
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
            api_command("notifications", notifications_port),
            notifications_env,
            test_logs / "notifications-api.log",
        ),
    }
    if consular_database is not None:
        consular_env = service_env(
            "CONSULAR",
            database_url=consular_database,
            kafka=kafka_bootstrap,
            topic_prefix=topic_prefix,
            issuer=identity_provider,
            # Persons' data keys from this platform's registry (crypto-shredding).
            event_keys_from=f"http://127.0.0.1:{port}",
            # Uploaded documents in the test's own folder.
            extra={"CONSULAR_DOCUMENTS__LOCAL_ROOT": str(test_logs / "consular-documents")},
        )
        processes["consular-api"] = ServiceProcess(
            "consular-api",
            api_command("consular", consular_port),
            consular_env,
            test_logs / "consular-api.log",
        )
        processes["consular-relay"] = ServiceProcess(
            "consular-relay", ["consular-relay"], consular_env, test_logs / "consular-relay.log"
        )
        processes["consular-worker"] = ServiceProcess(
            "consular-worker", ["consular-worker"], consular_env, test_logs / "consular-worker.log"
        )
    for name, process in processes.items():
        # Consular's start once the registry answers (``answering``): eight Python
        # processes importing at once on two busy cores kept the registry from answering
        # within its timeout; its key service is what consular's processes call first.
        if not name.startswith("consular-"):
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
        consular_url=f"http://127.0.0.1:{consular_port}" if consular_database else None,
        consular_database=consular_database,
    )
    try:
        yield platform
    finally:
        for process in platform.processes.values():
            process.stop()


@pytest.fixture
async def platform(platform_processes: LocalPlatform) -> LocalPlatform:
    """The running platform, once its HTTP APIs answer."""
    return await answering(platform_processes)


async def answering(platform: LocalPlatform) -> LocalPlatform:
    for url in (platform.registry_url, platform.notifications_url):
        # Generous: a dozen Python processes import and start at once on two cores.
        await wait_until(lambda url=url: answers(f"{url}/health/ready"), timeout=180, message=url)
    if platform.consular_url is not None:
        for process in platform.processes.values():
            if process.process is None:  # not started yet: consular's (running_platform)
                process.start()
        await wait_until(
            lambda: answers(f"{platform.consular_url}/health/ready"),
            timeout=180,
            message=platform.consular_url,
        )
    return platform


@asynccontextmanager
async def shared_platform(
    infra: stack.Endpoints, templates: dict[str, str], name: str
) -> AsyncIterator[LocalPlatform]:
    """A platform of its own for a whole test module (fresh databases, copies of the
    session's ``migrated_templates``; topic prefix, mailbox and issuer): for tests that
    each start a gateway in front of the platform and do not depend on each other's
    records. Saves starting five processes per test."""
    logs = StackConfig.from_env().state / "test-logs" / name
    logs.mkdir(parents=True, exist_ok=True)
    registry_url = await create_database(
        infra.pg_url, "registry", template=await migrated_template(infra, templates, "registry")
    )
    notifications_url = await create_database(
        infra.pg_url,
        "notifications",
        template=await migrated_template(infra, templates, "notifications"),
    )
    prefix = unique_name("t") + "."
    try:
        issuer_port = free_port()
        issuer = LocalIssuer(f"http://127.0.0.1:{issuer_port}/dev-idp", clients=DEV_SERVICE_CLIENTS)
        async with serve_app(issuer.asgi_app(), port=issuer_port):
            with (
                Mailbox() as mailbox,
                running_platform(
                    registry_url,
                    notifications_url,
                    infra.kafka_bootstrap,
                    prefix,
                    mailbox,
                    logs,
                    issuer,
                ) as platform,
            ):
                yield await answering(platform)
    finally:
        await delete_topics_with_prefix(infra.kafka_bootstrap, prefix)
        await drop_database(registry_url)
        await drop_database(notifications_url)


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
                # Consular, when the platform runs it (``consular_platform``).
                "consular": (
                    platform.consular_url or f"http://127.0.0.1:{free_port()}"
                ).removeprefix("http://"),
                # Not part of this platform fixture: nothing listens there (503 problem).
                "returnees": f"127.0.0.1:{free_port()}",
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


@pytest.fixture
def registry_service(
    registry_database: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    identity_provider: LocalIssuer,
) -> RegistrySettings:
    """The registry's settings on this test's database, topic prefix and issuer, for
    tests that run its app and worker in process."""
    return RegistrySettings(
        database_url=asyncpg_url(app_url(registry_database, "registry")),
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        environment="test",
        json_logs=False,
        oidc_issuer=identity_provider.issuer,
        oidc_jwks_min_refresh_seconds=0,
    )
