"""Kafka clients configured the one way the platform uses them."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.protocol.metadata import MetadataRequest
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from diaspora_events.topics import Topic

log = structlog.get_logger(__name__)

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]


@dataclass(frozen=True)
class KafkaConnection:
    """Where the brokers are and how a client proves who it is (docs/security.md).

    PLAINTEXT is for a broker on loopback (the embedded development stack, tests);
    deployments use SASL_SSL: TLS to the brokers (verified against ``ca_file``) and a
    SCRAM principal per service, whose ACLs limit it to its own topics and groups.
    ``cert_file``/``key_file`` add a client certificate (mutual TLS) where the brokers
    ask for one. Every producer, consumer and admin client of the platform is built
    from one of these (``client_options``, ``faststream_security``).
    """

    bootstrap_servers: str
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def __post_init__(self) -> None:
        if self.uses_sasl and not (self.sasl_username and self.sasl_password):
            raise ValueError(f"{self.security_protocol} needs a SASL username and password")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs both its certificate and key files")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    def ssl_context(self) -> ssl.SSLContext | None:
        """Verifies the brokers' certificates and host names (against ``ca_file``, or
        the system's authorities without one); TLS 1.2 at least."""
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_file and self.key_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def security_options(self) -> dict[str, Any]:
        """The keyword arguments of every aiokafka client but the bootstrap servers."""
        options: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password
        return options


Kafka = KafkaConnection | str
"""A connection, or just bootstrap servers (plaintext: loopback development and tests)."""


def kafka_connection(kafka: Kafka) -> KafkaConnection:
    return kafka if isinstance(kafka, KafkaConnection) else KafkaConnection(kafka)


def client_options(kafka: Kafka) -> dict[str, Any]:
    """``bootstrap_servers`` and the security options of an aiokafka client."""
    connection = kafka_connection(kafka)
    return {"bootstrap_servers": connection.bootstrap_servers, **connection.security_options()}


def idempotent_producer(bootstrap_servers: Kafka, *, client_id: str) -> AIOKafkaProducer:
    """A producer that neither loses (acks=all) nor duplicates on retry (idempotence)."""
    return AIOKafkaProducer(
        **client_options(bootstrap_servers),
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        max_batch_size=256 * 1024,
        request_timeout_ms=15000,
    )


async def ensure_topics(
    bootstrap_servers: Kafka, topics: Iterable[Topic], *, replication_factor: int = 1
) -> None:
    """Create the topics that do not exist yet, with their partitions and retention."""
    admin = AIOKafkaAdminClient(**client_options(bootstrap_servers), client_id="topic-setup")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=topic.name,
                num_partitions=topic.partitions,
                replication_factor=replication_factor,
                topic_configs=topic.topic_config(),
            )
            for topic in topics
            if topic.name not in existing
        ]
        if missing:
            # Another process may create them in between: the outcome is the same.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            log.info("topics_created", topics=[t.name for t in missing])
        # Metadata for new topics reaches every broker a moment after creation.
        for _ in range(50):
            if {t.name for t in missing} <= set(await admin.list_topics()):
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def topic_partitions(
    consumer: AIOKafkaConsumer, topics: Iterable[str]
) -> list[TopicPartition]:
    """Every partition of ``topics``, from fresh metadata of those topics only.

    A consumer only tracks metadata of what it subscribes to; tools that look at
    other topics (lag, offset resets) ask the broker about them. Only about them:
    the whole cluster's metadata grows with every topic (a shared test broker holds
    a thousand), and decoding it took a tenth of the notifications worker's time,
    whose lag monitor asks every 5 s. Topics that do not exist have no partitions
    (and are not created).
    """
    names = list(dict.fromkeys(topics))
    if not names:
        return []
    client = consumer._client  # no public call returns partitions
    node = client.get_random_node()
    if node is None:
        raise KafkaError("no broker known to ask for metadata")
    response = await client.send(node, MetadataRequest(names, allow_auto_topic_creation=False))
    cluster = ClusterMetadata()
    cluster.update_metadata(response)
    return [
        TopicPartition(topic, partition)
        for topic in names
        for partition in sorted(cluster.partitions_for_topic(topic) or ())
    ]


def faststream_security(kafka: Kafka) -> BaseSecurity | None:
    """The same connection's security as FastStream's broker takes it."""
    connection = kafka_connection(kafka)
    context = connection.ssl_context()
    if connection.uses_sasl:
        username, password = connection.sasl_username or "", connection.sasl_password or ""
        kinds: dict[str, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
            "PLAIN": SASLPlaintext,
            "SCRAM-SHA-256": SASLScram256,
            "SCRAM-SHA-512": SASLScram512,
        }
        return kinds[connection.sasl_mechanism](
            username, password, ssl_context=context, use_ssl=connection.uses_tls
        )
    if context is not None:
        return BaseSecurity(ssl_context=context, use_ssl=True)
    return None
