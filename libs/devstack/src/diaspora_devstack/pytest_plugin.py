"""Pytest fixtures for the real infrastructure (loaded with ``-p diaspora_devstack.pytest_plugin``).

The suite uses PostgreSQL and Kafka given by ``DIASPORA_PG_URL`` and
``DIASPORA_KAFKA_BOOTSTRAP`` when both are set (CI services, testcontainers),
and otherwise starts the embedded local ones (`devstack up`). Every test gets
its own databases and its own topic prefix, so tests never see each other's data.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from diaspora_devstack import stack
from diaspora_devstack.config import StackConfig
from diaspora_devstack.testing import (
    create_database,
    delete_topics_with_prefix,
    drop_database,
    free_port,
    migrate,
    serve_app,
    unique_name,
)
from diaspora_identity.testing import DEV_SERVICE_CLIENTS, LocalIssuer


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that reaches the real infrastructure (the ``infra`` fixture, directly or
    through another fixture) is an integration test whether or not its module says so,
    so that the fast tier (``make test-fast``: ``-m "not integration and not slow"``)
    can trust the mark."""
    for item in items:
        if "infra" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def infra() -> stack.Endpoints:
    """The PostgreSQL server and Kafka broker the integration tests talk to."""
    endpoints, _started = stack.up()
    return endpoints


@pytest.fixture(scope="session")
def kafka_bootstrap(infra: stack.Endpoints) -> str:
    return infra.kafka_bootstrap


@pytest.fixture
async def topic_prefix(infra: stack.Endpoints) -> AsyncIterator[str]:
    """A fresh topic namespace for one test; its topics are deleted afterwards.

    Left behind, every test's topics stay on the shared local broker: thousands of
    partitions that slow each later topic listing and make the broker's restart take
    minutes (it loads every partition's log before it answers).
    """
    prefix = unique_name("t") + "."
    yield prefix
    await delete_topics_with_prefix(infra.kafka_bootstrap, prefix)


@pytest.fixture
def test_logs(request: pytest.FixtureRequest) -> Path:
    """Folder for the logs of processes a test starts."""
    name: str = request.node.name
    folder = StackConfig.from_env().state / "test-logs" / name[:80]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
async def migrated_templates(infra: stack.Endpoints) -> AsyncIterator[dict[str, str]]:
    """Per service, a database migrated once per session that test databases copy
    (``CREATE DATABASE ... TEMPLATE``: a third of the time of running the migrations)."""
    templates: dict[str, str] = {}
    yield templates
    for url in templates.values():
        await drop_database(url)


async def migrated_template(infra: stack.Endpoints, templates: dict[str, str], service: str) -> str:
    """The URL of ``service``'s migrated template (of :func:`migrated_templates`), migrated
    now if this session has not yet: copy it with ``create_database(template=...)``."""
    if service not in templates:
        template = await create_database(infra.pg_url, f"template_{service}")
        await asyncio.to_thread(migrate, service, template)
        templates[service] = template
    return templates[service]


async def _migrated(
    infra: stack.Endpoints, templates: dict[str, str], service: str
) -> AsyncIterator[str]:
    template = await migrated_template(infra, templates, service)
    url = await create_database(infra.pg_url, service, template=template)
    try:
        yield url
    finally:
        if not os.environ.get("DIASPORA_KEEP_TEST_DATABASES"):
            await drop_database(url)


@pytest.fixture
async def registry_database(
    infra: stack.Endpoints, migrated_templates: dict[str, str]
) -> AsyncIterator[str]:
    """A fresh registry database with its migrations applied (libpq URL)."""
    async for url in _migrated(infra, migrated_templates, "registry"):
        yield url


@pytest.fixture
async def notifications_database(
    infra: stack.Endpoints, migrated_templates: dict[str, str]
) -> AsyncIterator[str]:
    """A fresh notifications database with its migrations applied (libpq URL)."""
    async for url in _migrated(infra, migrated_templates, "notifications"):
        yield url


@pytest.fixture
async def matching_database(
    infra: stack.Endpoints, migrated_templates: dict[str, str]
) -> AsyncIterator[str]:
    """A fresh matching database with its migrations applied (libpq URL)."""
    async for url in _migrated(infra, migrated_templates, "matching"):
        yield url


@pytest.fixture
async def consular_database(
    infra: stack.Endpoints, migrated_templates: dict[str, str]
) -> AsyncIterator[str]:
    """A fresh consular database with its migrations applied (libpq URL)."""
    async for url in _migrated(infra, migrated_templates, "consular"):
        yield url


@pytest.fixture
async def empty_database(infra: stack.Endpoints) -> AsyncIterator[str]:
    url = await create_database(infra.pg_url, "empty")
    try:
        yield url
    finally:
        await drop_database(url)


@pytest.fixture
async def identity_provider() -> AsyncIterator[LocalIssuer]:
    """A token issuer for one test: its discovery document and JWKS served on loopback."""
    port = free_port()
    issuer = LocalIssuer(f"http://127.0.0.1:{port}/dev-idp", clients=DEV_SERVICE_CLIENTS)
    async with serve_app(issuer.asgi_app(), port=port):
        yield issuer


@pytest.fixture
def mailbox() -> Iterator[object]:
    """A real SMTP server (aiosmtpd) on loopback that keeps what it receives."""
    from diaspora_devstack.mailbox import Mailbox

    with Mailbox() as box:
        yield box
