"""Pytest fixtures for both tiers (loaded with ``-p diaspora_devstack.pytest_plugin``).

Integration tier: the suite uses PostgreSQL and Kafka given by ``DIASPORA_PG_URL`` and
``DIASPORA_KAFKA_BOOTSTRAP`` when both are set (CI services, testcontainers),
and otherwise starts the embedded local ones (`devstack up`). Every test gets
its own databases and its own topic prefix, so tests never see each other's data.

Fast tier (``make test-fast``): ``fastdb`` is a PostgreSQL of the session's own
(:mod:`diaspora_devstack.fastdb`), each service's schema migrated once; ``registry_tx``,
``matching_tx`` and ``notifications_tx`` give a test a transaction on its service's
database, rolled back at the end. No Kafka: handlers are called with records
(``EventConsumer.handle_record``) or through FastStream's in-memory test broker.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from diaspora_devstack import stack
from diaspora_devstack.config import StackConfig
from diaspora_devstack.fastdb import FastDatabases, RolledBack, start_for_session
from diaspora_devstack.seaweed import S3Endpoint, SeaweedS3
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

if TYPE_CHECKING:
    from diaspora_documents.settings import S3Settings


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that reaches the real infrastructure (the ``infra`` fixture, directly or
    through another fixture) is an integration test whether or not its module says so,
    so that the fast tier (``make test-fast``: ``-m "not integration and not slow"``)
    can trust the mark."""
    for item in items:
        if {"infra", "s3_server"} & set(getattr(item, "fixturenames", ())):
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
async def returnees_database(
    infra: stack.Endpoints, migrated_templates: dict[str, str]
) -> AsyncIterator[str]:
    """A fresh returnees database with its migrations applied (libpq URL)."""
    async for url in _migrated(infra, migrated_templates, "returnees"):
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


# The bucket every test of a session shares, each under its own key prefix: SeaweedFS
# keeps a bucket's objects in volumes of their own, allocated when it is created.
TEST_BUCKET = "diaspora-test"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """A real S3-compatible server (SeaweedFS) on free loopback ports for the session,
    with one identity (its access key and secret); stopped at the end."""
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    with server as endpoint:
        yield endpoint


@pytest.fixture
async def s3_store_settings(s3_server: S3Endpoint) -> S3Settings:
    """S3 settings for one test: the session's server and bucket, a key prefix of its own.
    Returns once a real write under that prefix succeeded."""
    from pydantic import SecretStr

    from diaspora_documents.s3 import S3ObjectStore
    from diaspora_documents.settings import S3Settings
    from diaspora_documents.store import StoreUnavailable

    settings = S3Settings(
        endpoint_url=s3_server.url,
        bucket=TEST_BUCKET,
        region=s3_server.region,
        access_key_id=s3_server.access_key_id,
        secret_access_key=SecretStr(s3_server.secret_access_key),
        key_prefix=unique_name("t").lower().replace("_", "-") + "/",
    )
    store = await S3ObjectStore.open(settings)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                await store.ensure_bucket()
                await store.put("ready", _one(b"ready"), content_type="text/plain")
                await store.delete("ready")
                return settings
            except StoreUnavailable:
                # A new bucket's volumes are being allocated.
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await store.close()


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


# ------------------------------------------------------------------------ fast tier


@pytest.fixture(scope="session")
def fastdb() -> Iterator[FastDatabases]:
    """The fast tier's PostgreSQL: started once per session (about a second), stopped and
    deleted at its end; :meth:`FastDatabases.url` migrates a service's database once."""
    databases = start_for_session()
    try:
        yield databases
    finally:
        databases.server.stop()


@pytest.fixture
async def registry_tx(fastdb: FastDatabases) -> AsyncIterator[RolledBack]:
    """The registry's migrated database in a transaction rolled back after the test."""
    async with fastdb.rolled_back("registry") as tx:
        yield tx


@pytest.fixture
async def matching_tx(fastdb: FastDatabases) -> AsyncIterator[RolledBack]:
    """Matching's migrated database in a transaction rolled back after the test."""
    async with fastdb.rolled_back("matching") as tx:
        yield tx


@pytest.fixture
async def notifications_tx(fastdb: FastDatabases) -> AsyncIterator[RolledBack]:
    """Notifications' migrated database in a transaction rolled back after the test."""
    async with fastdb.rolled_back("notifications") as tx:
        yield tx
