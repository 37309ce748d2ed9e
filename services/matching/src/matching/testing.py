"""Helpers for tests and benchmarks of the matching service (never used in production)."""

from __future__ import annotations

from typing import Any

from diaspora_devstack.testing import read_topic
from diaspora_events.cloudevents import decode, headers_from_kafka
from diaspora_events.kafka import ensure_topics
from diaspora_events.outbox import OutboxRelay
from diaspora_events.topics import ALL_TOPICS, Topic, with_prefix
from matching.adapters.orm import outbox
from matching.bootstrap import Matching


async def publish_outbox(service: Matching) -> int:
    """Publish every pending outbox row once, as the worker's relay would; returns how many."""
    settings = service.settings
    await ensure_topics(
        settings.kafka_bootstrap, [with_prefix(t, settings.topic_prefix) for t in ALL_TOPICS]
    )
    relay = OutboxRelay(
        engine=service.engine,
        table=outbox,
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="matching-test-relay",
        topic_prefix=settings.topic_prefix,
    )
    try:
        return await relay.publish_available()
    finally:
        await relay._close_producer()


async def events_on(service: Matching, topic: Topic, *, expect: int) -> list[tuple[str, Any]]:
    """(type, data) of the events on one of the platform's topics, read from the broker."""
    settings = service.settings
    records = await read_topic(
        settings.kafka_bootstrap, settings.topic_prefix + topic.name, expect=expect, timeout=20
    )
    found = []
    for record in records:
        envelope = decode(headers_from_kafka(record.headers), record.value)
        found.append((envelope.type, envelope.to_event()))
    return found
