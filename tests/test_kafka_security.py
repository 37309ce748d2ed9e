"""Kafka with TLS, SASL/SCRAM, one principal per service and ACLs (issue 15, item 10).

A private broker configured as the deployments run it (SASL_SSL listener, SCRAM-SHA-512
users created when its storage is formatted, StandardAuthorizer denying what no ACL
allows) and the platform's ACLs (diaspora_devstack.acls). The registry's own settings
connect over TLS and SCRAM: its producer, consumer, admin and FastStream clients write and
read its topics; reading another service's topic, connecting in plaintext or with a wrong
password are refused.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError

from diaspora_devstack.acls import platform_acls, setup_script
from diaspora_devstack.testing import SecureKafka
from diaspora_events.kafka import (
    KafkaConnection,
    client_options,
    ensure_topics,
    idempotent_producer,
)
from diaspora_events.metrics import broker_reachable
from diaspora_events.runtime import make_broker
from diaspora_events.topics import (
    ALL_TOPICS,
    MATCHING_NEEDS,
    REGISTRY_MEMBERS,
    dead_letter_topic,
)
from registry.settings import RegistrySettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSWORDS = {name: uuid.uuid4().hex for name in ("registry", "notifications", "matching")}


@pytest.fixture(scope="module")
async def broker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SecureKafka]:
    secure = SecureKafka(tmp_path_factory.mktemp("secure-kafka"), PASSWORDS)
    try:
        await secure.start(timeout=90)
        # Topics first, as the deployments' setup job does (as the admin), then the ACLs.
        await ensure_topics(secure.admin(), ALL_TOPICS)
        lines = [acl.line() for acls in platform_acls().values() for acl in acls]
        await asyncio.to_thread(secure.add_acls, lines)
        yield secure
    finally:
        secure.discard()


def registry_settings(
    broker: SecureKafka, monkeypatch: pytest.MonkeyPatch, password: str | None = None
) -> RegistrySettings:
    """The registry's settings as an operator sets them (environment variables)."""
    for name, value in {
        "REGISTRY_ENVIRONMENT": "test",
        "REGISTRY_DATABASE_URL": "postgresql+asyncpg://registry:x@db.invalid/registry",
        "REGISTRY_KAFKA_BOOTSTRAP": broker.bootstrap,
        "REGISTRY_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "REGISTRY_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "REGISTRY_KAFKA_SASL_USERNAME": "registry",
        "REGISTRY_KAFKA_SASL_PASSWORD": password or PASSWORDS["registry"],
        "REGISTRY_KAFKA_CA_FILE": str(broker.ca_file),
    }.items():
        monkeypatch.setenv(name, value)
    return RegistrySettings()


async def read_one(kafka: KafkaConnection, topic: str, group: str) -> list[bytes | None]:
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(kafka),
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        await consumer.start()
        batch = await consumer.getmany(timeout_ms=15_000, max_records=10)
        values = [record.value for records in batch.values() for record in records]
        await consumer.commit()
        return values
    finally:
        await consumer.stop()


async def test_a_service_reads_and_writes_its_own_topics_over_tls_and_scram(
    broker: SecureKafka, monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka = registry_settings(broker, monkeypatch).kafka
    assert kafka.security_protocol == "SASL_SSL"
    assert await broker_reachable(kafka)

    marker = uuid.uuid4().hex.encode()
    producer = idempotent_producer(kafka, client_id="registry-relay")
    await producer.start()
    try:
        await producer.send_and_wait(REGISTRY_MEMBERS.name, marker, key=b"k")
    finally:
        await producer.stop()
    assert marker in await read_one(kafka, REGISTRY_MEMBERS.name, "registry-read-models")

    # Its consumers' dead-letter topic: created and written by the service itself.
    await ensure_topics(kafka, [dead_letter_topic("registry-read-models")])
    # FastStream's broker (the workers' consumers and dead letters) with the same settings.
    fast = make_broker(kafka, client_id="registry-worker")
    await fast.start()
    try:
        await fast.publish(b"dead", topic="registry-read-models.dlq")
    finally:
        await fast.stop()
    assert b"dead" in await read_one(kafka, "registry-read-models.dlq", "registry-dlq-check")


async def test_another_services_topic_is_refused(
    broker: SecureKafka, monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka = registry_settings(broker, monkeypatch).kafka
    # The registry consumes nothing of matching's: reading matching.needs is refused...
    with pytest.raises(TopicAuthorizationFailedError):
        await read_one(kafka, MATCHING_NEEDS.name, "registry-read-models")
    # ...and so is writing to it.
    producer = idempotent_producer(kafka, client_id="registry-relay")
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(MATCHING_NEEDS.name, b"forged", key=b"k")
    finally:
        await producer.stop()
    # Notifications may read registry.members (it consumes it), not write it.
    notifications = broker.connection("notifications")
    writer = idempotent_producer(notifications, client_id="notifications-relay")
    await writer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await writer.send_and_wait(REGISTRY_MEMBERS.name, b"forged", key=b"k")
    finally:
        await writer.stop()
    # A consumer group that is not its own is refused too.
    with pytest.raises(KafkaError):
        await read_one(notifications, REGISTRY_MEMBERS.name, "matching-experts")
    assert isinstance(await read_one(notifications, REGISTRY_MEMBERS.name, "notifications"), list)


async def test_plaintext_and_a_wrong_password_are_refused(
    broker: SecureKafka, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Plaintext to the TLS listener: no metadata, no session.
    assert not await broker_reachable(KafkaConnection(broker.bootstrap), timeout=8)
    # TLS with a wrong password: authentication fails.
    wrong = registry_settings(broker, monkeypatch, password="not-the-password").kafka
    assert not await broker_reachable(wrong, timeout=8)
    admin = AIOKafkaAdminClient(**client_options(wrong), request_timeout_ms=5000)
    with pytest.raises(KafkaError):
        await asyncio.wait_for(admin.start(), timeout=20)
    await admin.close()
    # A client that does not trust the brokers' authority does not connect either.
    untrusting = KafkaConnection(
        broker.bootstrap,
        security_protocol="SASL_SSL",
        sasl_username="registry",
        sasl_password=PASSWORDS["registry"],
    )
    assert not await broker_reachable(untrusting, timeout=8)


def test_acls_limit_each_service_to_its_own_topics_and_groups() -> None:
    acls = platform_acls(prefix="prod.")
    assert set(acls) == {"registry", "notifications", "matching", "consular", "returnees"}
    for service, entries in acls.items():
        principal = f"User:{service}"
        assert {a.principal for a in entries} == {principal}
        writes = {(a.pattern_type, a.name) for a in entries if a.operation == "WRITE"}
        assert writes == {("PREFIXED", f"prod.{service}")}
        for acl in entries:
            assert acl.resource_type in ("TOPIC", "GROUP", "CLUSTER")
            if acl.operation != "DESCRIBE" and acl.resource_type != "CLUSTER":
                assert acl.name.startswith("prod."), acl
    reads = {a.name for a in acls["notifications"] if a.operation == "READ"}
    assert "prod.registry.members" in reads


def test_the_deployments_setup_script_is_generated_from_the_code() -> None:
    """deploy/k8s/kafka/setup.sh (compose and cluster job) is what the code says today."""
    script = Path(__file__).resolve().parents[1] / "deploy" / "k8s" / "kafka" / "setup.sh"
    assert script.read_text() == setup_script(), (
        "regenerate it: uv run python -m diaspora_devstack.acls --format script "
        "> deploy/k8s/kafka/setup.sh"
    )
    assert "allow-principal User:ANONYMOUS" not in script.read_text()
