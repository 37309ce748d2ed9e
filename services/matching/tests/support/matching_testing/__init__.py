"""Helpers for tests and benchmarks of the matching service: not shipped (they live
beside the tests, importable through pytest's ``pythonpath``); ``matching_testing.experts``
has registry member snapshots and events for the experts read model."""

from __future__ import annotations

from typing import Any

from diaspora_devstack.testing import publish_outbox as publish
from diaspora_devstack.testing import read_topic
from diaspora_events.cloudevents import decode, headers_from_kafka
from diaspora_events.topics import Topic
from matching.resources import Matching
from matching.tables import outbox


async def publish_outbox(service: Matching) -> int:
    """Run the outbox relay, as the worker does, until every pending row is published;
    returns how many rows were pending."""
    return await publish(
        service.engine,
        outbox,
        kafka_bootstrap=service.settings.kafka_bootstrap,
        topic_prefix=service.settings.topic_prefix,
        client_id="matching-test-relay",
    )


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
