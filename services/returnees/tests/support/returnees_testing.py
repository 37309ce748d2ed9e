"""Helpers of returnees' tests (not shipped): events published as another service's
relay would, the worker run in process, people put straight into the read model."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from uuid import UUID

import uuid_utils.compat as uuid_compat
from aiokafka import AIOKafkaProducer

from diaspora_events.cloudevents import encode, headers_to_kafka
from diaspora_events.contracts.base import Event
from diaspora_events.contracts.registry import MemberProfile
from diaspora_events.kafka import ensure_topics
from diaspora_events.topics import Topic
from returnees.entrypoints.worker import run
from returnees.members import service as members
from returnees.resources import Returnees


def new_member_id() -> UUID:
    return uuid_compat.uuid7()


def profile(
    *, given_name: str = "Yao", family_name: str = "Amouzou", country: str = "LY"
) -> MemberProfile:
    return MemberProfile(
        given_name=given_name,
        family_name=family_name,
        date_of_birth=date(1994, 2, 11),
        email=f"{given_name.lower()}.{family_name.lower()}@example.org",
        phone="+218912345678",
        preferred_language="fr",
        country_of_residence=country,
        embassy_id="ly-tripoli",
    )


async def known_person(service: Returnees, member_id: UUID, snapshot: MemberProfile) -> None:
    """The read model holds ``snapshot`` (as the consumer would have written it)."""
    async with service.sessions() as session, session.begin():
        await members.apply_snapshot(session, member_id, snapshot, datetime.now(UTC))


async def publish(bootstrap: str, topic: Topic, name: str, *events: Event, times: int = 1) -> None:
    """Publish events as their owner's relay does (CloudEvents, keyed by aggregate) on
    ``name`` (the topic with the test's prefix), created first if missing. ``times``:
    each record sent that many times, as it is (a redelivery: same event id)."""
    await ensure_topics(bootstrap, [replace(topic, name=name)])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for event in events:
            _id, headers, value = encode(event, source="/tg/diaspora/test")
            for _ in range(times):
                await producer.send_and_wait(
                    name,
                    value=value,
                    key=event.aggregate_id().encode(),
                    headers=headers_to_kafka(headers),
                )
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def running_worker(service: Returnees) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(run(service, stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
