"""The outbox relay against the real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import random
import zlib
from collections.abc import AsyncIterator, Callable
from datetime import date
from typing import Any
from uuid import UUID

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import MetaData, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from diaspora_devstack.testing import asyncpg_url, read_topic, wait_until
from diaspora_events.cloudevents import decode, headers_from_kafka
from diaspora_events.contracts import MemberRegisteredV1
from diaspora_events.kafka import ensure_topics, topic_partitions
from diaspora_events.outbox import OutboxRelay, OutboxWriter, outbox_table
from diaspora_events.topics import REGISTRY_MEMBERS, with_prefix

pytestmark = pytest.mark.integration

metadata = MetaData()
outbox = outbox_table(metadata)


@pytest.fixture
async def engine(empty_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(asyncpg_url(empty_database), pool_size=60, max_overflow=10)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


RelayStarter = Callable[[OutboxRelay], tuple[asyncio.Event, "asyncio.Task[None]"]]


async def records_in(bootstrap: str, topic: str) -> int:
    """How many records the topic holds (its partitions' end offsets: the relay's producer
    is idempotent, not transactional, so every offset is a record)."""
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await probe.start()
    try:
        partitions = await topic_partitions(probe, [topic])
        return sum((await probe.end_offsets(partitions)).values())
    finally:
        await probe.stop()


async def relay_leads(engine: AsyncEngine) -> bool:
    """A relay of the outbox table holds its leadership (the advisory lock)."""
    key = zlib.crc32(f"outbox-relay:{outbox.name}".encode())
    async with engine.connect() as conn:
        held = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND classid = 0 AND objid = :key AND objsubid = 1"
            ),
            {"key": key},
        )
    return held == 1


@pytest.fixture
async def start_relay(engine: AsyncEngine) -> AsyncIterator[RelayStarter]:
    """Starts relays as tasks; whatever a test leaves running is stopped before the
    database is dropped, even when the test fails."""
    running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    def start(relay: OutboxRelay) -> tuple[asyncio.Event, asyncio.Task[None]]:
        stop = asyncio.Event()
        running.append((stop, asyncio.create_task(relay.run(stop))))
        return running[-1]

    yield start
    for stop, _task in running:
        stop.set()
    await asyncio.gather(*(task for _stop, task in running), return_exceptions=True)


def unreachable_broker_relay(engine: AsyncEngine, topic_prefix: str, **more: Any) -> OutboxRelay:
    """A relay whose broker never answers (nothing listens on port 1)."""
    return OutboxRelay(
        engine=engine,
        table=outbox,
        bootstrap_servers="127.0.0.1:1",
        client_id="dead",
        topic_prefix=topic_prefix,
        poll_interval=0.05,
        **more,
    )


def registered(n: int) -> MemberRegisteredV1:
    from uuid_utils.compat import uuid7

    return MemberRegisteredV1(
        member_id=uuid7(),
        given_name=f"Person {n}",
        family_name="Test",
        date_of_birth=date(1990, 1, 1),
        email=f"p{n}@example.org",
        phone="+22890000000",
        country_of_residence="FR",
        registered_at="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
    )


async def test_every_committed_row_is_published_even_when_commits_come_out_of_order(
    engine: AsyncEngine, kafka_bootstrap: str, topic_prefix: str, start_relay: RelayStarter
) -> None:
    writer = OutboxWriter(outbox, source="/test")
    topic = with_prefix(REGISTRY_MEMBERS, topic_prefix)
    await ensure_topics(kafka_bootstrap, [topic])
    relay = OutboxRelay(
        engine=engine,
        table=outbox,
        bootstrap_servers=kafka_bootstrap,
        client_id="test-relay",
        topic_prefix=topic_prefix,
        poll_interval=0.05,
        batch_size=7,
    )
    stop, relay_task = start_relay(relay)

    # Rounds of writers: in each, every writer allocates its id (in order), then they
    # commit in the reverse order, so each commit lands after others that allocated a
    # higher id (the inversions a cursor over ids would skip), with the relay polling
    # between commits. Some writers roll back instead.
    writers, per_round = 48, 8
    allocated: list[tuple[int, int]] = []  # (writer, outbox id) in allocation order
    commit_order: list[int] = []
    committed_ids: set[UUID] = set()
    rolled_back_ids: set[UUID] = set()
    rng = random.Random(7)

    async def write_round(first: int) -> None:
        members = range(first, min(first + per_round, writers))
        allocated_in_round = asyncio.Event()
        turn = {n: asyncio.Event() for n in members}
        pending = len(members)

        async def write(n: int) -> None:
            nonlocal pending
            async with engine.connect() as conn:
                trans = await conn.begin()
                session = AsyncSession(bind=conn)
                event_id = await writer.add(session, registered(n))
                row_id = (
                    await conn.execute(select(outbox.c.id).where(outbox.c.event_id == event_id))
                ).scalar_one()
                allocated.append((n, row_id))
                pending -= 1
                if pending == 0:
                    allocated_in_round.set()
                    turn[members[-1]].set()  # the last to allocate commits first
                await turn[n].wait()
                if n % 9 == 4:
                    await trans.rollback()
                    rolled_back_ids.add(event_id)
                else:
                    await trans.commit()
                    committed_ids.add(event_id)
                    commit_order.append(n)
            await asyncio.sleep(rng.random() * 0.02)  # let the relay poll in between
            if n > members[0]:
                turn[n - 1].set()

        # Ids are allocated in writer order (one after the other), commits come after.
        tasks = []
        for n in members:
            tasks.append(asyncio.create_task(write(n)))
            await wait_until(lambda n=n: len(allocated) > n, timeout=30, message="allocation")
        await allocated_in_round.wait()
        await asyncio.gather(*tasks)

    for first in range(0, writers, per_round):
        await write_round(first)

    # The scenario really happened: many transactions committed after others
    # that had allocated a higher id (an inversion), which a cursor would skip.
    id_of = dict(allocated)
    committed_ids_in_order = [id_of[n] for n in commit_order]
    inversions = sum(
        1
        for i, earlier in enumerate(committed_ids_in_order)
        for later in committed_ids_in_order[i + 1 :]
        if later < earlier
    )
    assert inversions >= writers, f"only {inversions} out-of-order commits"

    records = await read_topic(kafka_bootstrap, topic.name, expect=len(committed_ids), timeout=30)

    async def all_marked_published() -> bool:
        async with engine.connect() as conn:
            left = await conn.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            )
        return left == 0

    # Everything the relay will publish is acknowledged (a row is marked once the broker
    # acknowledged it): the topic holds all it ever will, anything extra included.
    await wait_until(all_marked_published, timeout=30, message="every row marked published")
    stop.set()
    await relay_task
    # Read all of it (at-least-once allows a repeat; what matters is which events).
    total = await records_in(kafka_bootstrap, topic.name)
    records = await read_topic(kafka_bootstrap, topic.name, expect=total, timeout=30)
    assert len(records) == total

    published = [decode(headers_from_kafka(r.headers), r.value).id for r in records]
    assert set(published) == committed_ids
    assert not rolled_back_ids & set(published)
    async with engine.connect() as conn:
        unpublished = (
            await conn.execute(select(outbox.c.id).where(outbox.c.published_at.is_(None)))
        ).all()
    assert unpublished == []


async def test_relay_keeps_rows_and_retries_while_the_broker_is_unreachable(
    engine: AsyncEngine, kafka_bootstrap: str, topic_prefix: str, start_relay: RelayStarter
) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession

    writer = OutboxWriter(outbox, source="/test")
    topic = with_prefix(REGISTRY_MEMBERS, topic_prefix)
    await ensure_topics(kafka_bootstrap, [topic])
    async with AsyncSession(engine) as session, session.begin():
        for n in range(5):
            await writer.add(session, registered(n))

    dead = unreachable_broker_relay(engine, topic_prefix, max_backoff=0.2)
    stop, task = start_relay(dead)

    async def every_row_tried_twice() -> bool:
        async with engine.connect() as conn:
            attempts = (await conn.execute(select(outbox.c.attempts))).scalars().all()
        return len(attempts) == 5 and min(attempts) >= 2

    # The outcome: the relay tried (and retried) every row and recorded each failure.
    await wait_until(every_row_tried_twice, timeout=20, message="failed publish attempts")
    stop.set()
    await task
    async with engine.connect() as conn:
        rows = (await conn.execute(select(outbox.c.published_at, outbox.c.last_error))).all()
    assert all(r.published_at is None for r in rows)
    assert all(r.last_error for r in rows)

    live = OutboxRelay(
        engine=engine,
        table=outbox,
        bootstrap_servers=kafka_bootstrap,
        client_id="live",
        topic_prefix=topic_prefix,
        poll_interval=0.05,
    )
    stop, task = start_relay(live)
    records = await read_topic(kafka_bootstrap, topic.name, expect=5, timeout=20)
    stop.set()
    await task
    assert len(records) == 5
    # Kafka keys are the aggregate ids; CloudEvents attributes are headers.
    for record in records:
        envelope = decode(headers_from_kafka(record.headers), record.value)
        assert record.key.decode() == envelope.data["member_id"]
        assert envelope.type == "registry.member.registered"


async def test_a_relay_waiting_for_the_broker_stops_at_once(
    engine: AsyncEngine, kafka_bootstrap: str, topic_prefix: str, start_relay: RelayStarter
) -> None:
    writer = OutboxWriter(outbox, source="/test")
    async with AsyncSession(engine) as session, session.begin():
        await writer.add(session, registered(0))
    dead = unreachable_broker_relay(engine, topic_prefix)
    stop, task = start_relay(dead)

    async def failed_four_times() -> bool:
        async with engine.connect() as conn:
            return (await conn.scalar(select(outbox.c.attempts))) >= 4

    # After the fourth failure the relay waits 3.2 s or more before the next attempt.
    await wait_until(failed_four_times, timeout=30, message="four failed publish attempts")
    stopped_at = asyncio.get_running_loop().time()
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    assert asyncio.get_running_loop().time() - stopped_at < 1.5
    async with engine.connect() as conn:
        row = (await conn.execute(select(outbox.c.published_at, outbox.c.attempts))).one()
    assert row.published_at is None
    assert 4 <= row.attempts <= 5


async def test_only_one_relay_leads_at_a_time(
    engine: AsyncEngine, kafka_bootstrap: str, topic_prefix: str, start_relay: RelayStarter
) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession

    writer = OutboxWriter(outbox, source="/test")
    topic = with_prefix(REGISTRY_MEMBERS, topic_prefix)
    await ensure_topics(kafka_bootstrap, [topic])
    relays = [
        OutboxRelay(
            engine=engine,
            table=outbox,
            bootstrap_servers=kafka_bootstrap,
            client_id=f"r{i}",
            topic_prefix=topic_prefix,
            poll_interval=0.05,
        )
        for i in range(2)
    ]
    started = [start_relay(r) for r in relays]
    # Both run; rows are written once one of them leads (holds the table's advisory lock).
    await wait_until(lambda: relay_leads(engine), timeout=20, message="a leading relay")
    async with AsyncSession(engine) as session, session.begin():
        for n in range(20):
            await writer.add(session, registered(n))
    records = await read_topic(kafka_bootstrap, topic.name, expect=20, timeout=20)
    for stop, _task in started:
        stop.set()
    await asyncio.gather(*(task for _stop, task in started))
    assert len(records) == 20
    assert sorted(r.published_total for r in relays) == [0, 20]
