"""Idempotent consumers, retries and dead letters against the real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import Column, MetaData, Table, Text, Uuid, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from diaspora_devstack.testing import asyncpg_url, read_topic, wait_until
from diaspora_events.cloudevents import Envelope, encode, headers_to_kafka
from diaspora_events.consumer import EventConsumer, inbox_table
from diaspora_events.contracts import MemberRegisteredV1
from diaspora_events.runtime import (
    broker_dead_letter_sink,
    make_broker,
    prepare_topics,
    subscribe,
)
from diaspora_events.topics import REGISTRY_MEMBERS

pytestmark = pytest.mark.integration

metadata = MetaData()
inbox = inbox_table(metadata)
effects = Table("effects", metadata, Column("member_id", Uuid), Column("note", Text))


@pytest.fixture
async def engine(empty_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(asyncpg_url(empty_database))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


def event(n: int) -> MemberRegisteredV1:
    from uuid_utils.compat import uuid7

    return MemberRegisteredV1(
        member_id=uuid7(),
        given_name=f"Person {n}",
        family_name="Test",
        date_of_birth=date(1990, 1, 1),
        email=f"p{n}@example.org",
        phone="+22890000000",
        country_of_residence="TG",
        registered_at="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
    )


async def produce(
    bootstrap: str, topic: str, items: list[tuple[bytes, dict[str, str], bytes]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for key, headers, value in items:
            # One key, so every record lands on one partition, in order.
            await producer.send_and_wait(
                topic, value=value, key=key, headers=headers_to_kafka(headers)
            )
    finally:
        await producer.stop()


async def count(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_redelivered_event_has_its_effect_once_and_failures_go_to_dead_letters(
    engine: AsyncEngine, kafka_bootstrap: str, topic_prefix: str
) -> None:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    broker = make_broker(kafka_bootstrap, client_id="test")
    consumer = EventConsumer(
        name="tester",
        session_factory=async_sessionmaker(engine),
        inbox=inbox,
        dead_letters=broker_dead_letter_sink(broker),
        topic_prefix=topic_prefix,
        max_attempts=3,
        first_backoff=0.01,
    )
    calls: dict[str, int] = {}

    @consumer.on(MemberRegisteredV1)
    async def handle(ev: MemberRegisteredV1, session: AsyncSession, envelope: Envelope) -> None:
        calls[ev.given_name] = calls.get(ev.given_name, 0) + 1
        if ev.given_name == "Person 2":
            raise RuntimeError("this one always fails")
        if ev.given_name == "Person 3" and calls[ev.given_name] < 3:
            raise ConnectionError("transient")
        await session.execute(effects.insert().values(member_id=ev.member_id, note=ev.given_name))

    await prepare_topics(kafka_bootstrap, [consumer], prefix=topic_prefix)
    subscribe(broker, consumer)
    topic = topic_prefix + REGISTRY_MEMBERS.name
    key = b"same-partition"
    once = encode(event(1), source="/test")
    items = [
        (key, once[1], once[2]),
        (key, once[1], once[2]),  # the same event delivered twice
        (key, *encode(event(2), source="/test")[1:]),  # always fails -> dead letter
        (key, {"ce_specversion": "0.3"}, b"not a cloudevent"),  # malformed -> dead letter
        (key, *encode(event(3), source="/test")[1:]),  # fails twice, then succeeds
        (key, *encode(event(4), source="/test")[1:]),  # after the failures: still handled
    ]
    await produce(kafka_bootstrap, topic, items)
    await broker.start()
    try:
        await wait_until(lambda: count(engine, effects), timeout=30, message="effects")
        await wait_until(
            lambda: _equals(count(engine, effects), 3), timeout=30, message="three effects"
        )
    finally:
        await broker.stop()

    async with engine.connect() as conn:
        notes = sorted(r.note for r in await conn.execute(select(effects.c.note)))
    assert notes == ["Person 1", "Person 3", "Person 4"]
    assert calls["Person 1"] == 1
    assert calls["Person 2"] == 3
    assert calls["Person 3"] == 3

    dead = await read_topic(kafka_bootstrap, consumer.dead_letter_topic.name, expect=2)
    assert len(dead) == 2
    headers = [dict((k, v.decode()) for k, v in r.headers) for r in dead]
    assert headers[0]["dlq_error_type"] == "RuntimeError"
    assert "always fails" in headers[0]["dlq_error"]
    assert headers[0]["dlq_attempts"] == "3"
    assert headers[0]["dlq_original_topic"] == topic
    assert headers[0]["ce_type"] == "registry.member.registered"
    assert headers[1]["dlq_error_type"] == "MalformedEvent"
    assert dead[1].value == b"not a cloudevent"


async def test_offsets_are_committed_only_after_the_handler_transaction(
    engine: AsyncEngine, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """A consumer stopped mid-way resumes where its last committed transaction ended."""
    from sqlalchemy.ext.asyncio import async_sessionmaker

    topic = topic_prefix + REGISTRY_MEMBERS.name
    started = asyncio.Event()
    release = asyncio.Event()

    def build(blocking: bool) -> tuple[object, EventConsumer]:
        broker = make_broker(kafka_bootstrap, client_id="test")
        consumer = EventConsumer(
            name="resumer",
            session_factory=async_sessionmaker(engine),
            inbox=inbox,
            dead_letters=broker_dead_letter_sink(broker),
            topic_prefix=topic_prefix,
        )

        @consumer.on(MemberRegisteredV1)
        async def handle(ev: MemberRegisteredV1, session: AsyncSession, _e: Envelope) -> None:
            await session.execute(effects.insert().values(member_id=ev.member_id, note="x"))
            if blocking and ev.given_name == "Person 3":
                started.set()
                await release.wait()  # never released: the consumer is stopped meanwhile
                raise asyncio.CancelledError

        subscribe(broker, consumer)
        return broker, consumer

    broker, consumer = build(blocking=True)
    await prepare_topics(kafka_bootstrap, [consumer], prefix=topic_prefix)
    await produce(
        kafka_bootstrap, topic, [(b"k", *encode(event(n), source="/test")[1:]) for n in range(6)]
    )
    await broker.start()  # type: ignore[attr-defined]
    await asyncio.wait_for(started.wait(), timeout=30)
    await broker.stop()  # type: ignore[attr-defined]
    assert await count(engine, effects) == 3  # 0, 1, 2 committed; 3 rolled back

    broker, consumer = build(blocking=False)
    await broker.start()  # type: ignore[attr-defined]
    try:
        await wait_until(
            lambda: _equals(count(engine, effects), 6), timeout=30, message="all six effects"
        )
    finally:
        await broker.stop()  # type: ignore[attr-defined]
    assert await count(engine, inbox) == 6


async def _equals(value: object, expected: int) -> bool:
    return await value == expected  # type: ignore[misc]
