"""Operations tooling against the real broker and database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import Column, MetaData, Table, Text, Uuid, delete, func, select
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from uuid_utils.compat import uuid7

from diaspora_devstack.testing import asyncpg_url, wait_until
from diaspora_events.cloudevents import Envelope, encode, headers_to_kafka
from diaspora_events.consumer import EventConsumer, inbox_table
from diaspora_events.contracts import MemberRegisteredV1
from diaspora_events.runtime import broker_dead_letter_sink, make_broker, prepare_topics, subscribe
from diaspora_events.topics import REGISTRY_MEMBERS
from diaspora_service.ops import backup, replay_dead_letters, reset_offsets, restore

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
    return MemberRegisteredV1(
        member_id=uuid7(),
        given_name=f"Ops {n}",
        family_name="Test",
        date_of_birth=date(1970, 1, 1),
        email=f"ops{n}@example.org",
        phone="+22890123456",
        country_of_residence="TG",
        registered_at="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
    )


async def count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(effects))).scalar_one())


async def publish(bootstrap: str, topic: str, events: list[MemberRegisteredV1]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for ev in events:
            _id, headers, value = encode(ev, source="/test")
            await producer.send_and_wait(
                topic,
                value=value,
                key=ev.aggregate_id().encode(),
                headers=headers_to_kafka(headers),
            )
    finally:
        await producer.stop()


def consumer_for(
    engine: AsyncEngine, kafka: str, prefix: str, state: dict[str, bool]
) -> tuple[object, EventConsumer]:
    broker = make_broker(kafka, client_id="ops-test")
    consumer = EventConsumer(
        name="ops",
        session_factory=async_sessionmaker(engine),
        inbox=inbox,
        dead_letters=broker_dead_letter_sink(broker),
        topic_prefix=prefix,
        max_attempts=2,
        first_backoff=0.01,
    )

    @consumer.on(MemberRegisteredV1)
    async def handle(ev: MemberRegisteredV1, session: AsyncSession, _e: Envelope) -> None:
        if state["broken"]:
            raise RuntimeError("bug in the handler")
        await session.execute(effects.insert().values(member_id=ev.member_id, note=ev.given_name))

    subscribe(broker, consumer)
    return broker, consumer


async def test_dead_letters_replayed_after_the_fix_take_effect_once(
    engine: AsyncEngine, kafka_bootstrap: str, topic_prefix: str
) -> None:
    state = {"broken": True}
    broker, consumer = consumer_for(engine, kafka_bootstrap, topic_prefix, state)
    await prepare_topics(kafka_bootstrap, [consumer], prefix=topic_prefix)
    await broker.start()  # type: ignore[attr-defined]
    try:
        await publish(kafka_bootstrap, topic_prefix + REGISTRY_MEMBERS.name, [event(1), event(2)])
        await wait_until(
            lambda: consumer.dead_lettered_total == 2, timeout=30, message="two dead letters"
        )
        assert await count(engine) == 0

        state["broken"] = False  # the fix is deployed
        report = await replay_dead_letters(
            bootstrap_servers=kafka_bootstrap, dead_letter_topic=consumer.dead_letter_topic.name
        )
        assert report.replayed == 2
        assert report.topics == {topic_prefix + REGISTRY_MEMBERS.name: 2}
        await wait_until(lambda: _eq(count(engine), 2), timeout=30, message="replayed effects")

        again = await replay_dead_letters(
            bootstrap_servers=kafka_bootstrap, dead_letter_topic=consumer.dead_letter_topic.name
        )
        assert again.replayed == 0
    finally:
        await broker.stop()  # type: ignore[attr-defined]
    assert await count(engine) == 2


async def test_reset_offsets_rebuilds_a_read_model_from_the_topic(
    engine: AsyncEngine, kafka_bootstrap: str, topic_prefix: str
) -> None:
    state = {"broken": False}
    broker, consumer = consumer_for(engine, kafka_bootstrap, topic_prefix, state)
    await prepare_topics(kafka_bootstrap, [consumer], prefix=topic_prefix)
    topic = topic_prefix + REGISTRY_MEMBERS.name
    await publish(kafka_bootstrap, topic, [event(n) for n in range(5)])
    await broker.start()  # type: ignore[attr-defined]
    await wait_until(lambda: _eq(count(engine), 5), timeout=30, message="first build")
    await broker.stop()  # type: ignore[attr-defined]

    async with engine.begin() as conn:  # the read model is lost or must be rebuilt
        await conn.execute(delete(effects))
        await conn.execute(delete(inbox))
    offsets = await reset_offsets(
        bootstrap_servers=kafka_bootstrap, group_id=consumer.group_id, topic=topic
    )
    assert set(offsets.values()) == {0}

    broker, consumer = consumer_for(engine, kafka_bootstrap, topic_prefix, state)
    await broker.start()  # type: ignore[attr-defined]
    try:
        await wait_until(lambda: _eq(count(engine), 5), timeout=30, message="rebuild")
    finally:
        await broker.stop()  # type: ignore[attr-defined]


async def test_backup_and_restore_a_service_database(
    engine: AsyncEngine, empty_database: str, tmp_path: Path
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            effects.insert(), [{"member_id": uuid7(), "note": f"n{n}"} for n in range(3)]
        )
    archive = tmp_path / "backup.dump"
    await asyncio.to_thread(backup, empty_database, archive)
    async with engine.begin() as conn:
        await conn.execute(delete(effects))
    await engine.dispose()
    await asyncio.to_thread(restore, empty_database, archive)
    assert await count(engine) == 3


async def _eq(value: object, expected: int) -> bool:
    return await value == expected  # type: ignore[misc]
