"""Helpers for tests and benchmarks of the matching service (never used in production)."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from diaspora_devstack.testing import read_topic, wait_until
from diaspora_events.cloudevents import decode, headers_from_kafka
from diaspora_events.kafka import ensure_topics
from diaspora_events.outbox import OutboxRelay
from diaspora_events.topics import ALL_TOPICS, Topic, with_prefix
from matching.adapters.orm import outbox
from matching.bootstrap import Matching


async def _unpublished(service: Matching) -> int:
    async with service.sessions() as session:
        found = await session.execute(
            select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        )
    return int(found.scalar_one())


async def publish_outbox(service: Matching) -> int:
    """Run the outbox relay, as the worker does, until every pending row is published;
    returns how many rows were pending."""
    settings = service.settings
    await ensure_topics(
        settings.kafka_bootstrap, [with_prefix(t, settings.topic_prefix) for t in ALL_TOPICS]
    )
    pending = await _unpublished(service)
    relay = OutboxRelay(
        engine=service.engine,
        table=outbox,
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="matching-test-relay",
        topic_prefix=settings.topic_prefix,
        poll_interval=0.05,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:

        async def done() -> bool:
            return await _unpublished(service) == 0

        await wait_until(done, timeout=30, message="the outbox to be published")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
    return pending


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
