"""Kafka clients configured the one way the platform uses them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.protocol.metadata import MetadataRequest

from diaspora_events.topics import Topic

log = structlog.get_logger(__name__)


def idempotent_producer(bootstrap_servers: str, *, client_id: str) -> AIOKafkaProducer:
    """A producer that neither loses (acks=all) nor duplicates on retry (idempotence)."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        max_batch_size=256 * 1024,
        request_timeout_ms=15000,
    )


async def ensure_topics(
    bootstrap_servers: str, topics: Iterable[Topic], *, replication_factor: int = 1
) -> None:
    """Create the topics that do not exist yet, with their partitions and retention."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="topic-setup")
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
