"""The shared worker runtime against the real PostgreSQL and Kafka: consumers, jobs,
outbox relay, readiness, and a clean stop or a failing task ending the process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date

import httpx
import pytest
from sqlalchemy import Column, MetaData, Table, Text, Uuid, func, select
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from uuid_utils.compat import uuid7

from diaspora_devstack.testing import asyncpg_url, free_port, read_topic, wait_until
from diaspora_events.cloudevents import Envelope, decode, headers_from_kafka
from diaspora_events.consumer import DeadLetterSink, EventConsumer, inbox_table
from diaspora_events.contracts import MemberRegisteredV1
from diaspora_events.outbox import OutboxRelay, OutboxWriter, outbox_table
from diaspora_events.topics import REGISTRY_MEMBERS
from diaspora_service.settings import ServiceSettings
from diaspora_service.worker import run_worker

pytestmark = pytest.mark.integration

metadata = MetaData()
inbox = inbox_table(metadata)
outbox = outbox_table(metadata)
effects = Table("effects", metadata, Column("member_id", Uuid), Column("note", Text))


@pytest.fixture
async def engine(empty_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(asyncpg_url(empty_database))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


def registered(note: str) -> MemberRegisteredV1:
    return MemberRegisteredV1(
        member_id=uuid7(),
        given_name=note,
        family_name="Test",
        date_of_birth=date(1990, 1, 1),
        email="p@example.org",
        phone="+22890000000",
        country_of_residence="TG",
        registered_at="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
    )


def settings(empty_database: str, kafka_bootstrap: str, prefix: str, port: int) -> ServiceSettings:
    return ServiceSettings(
        environment="test",
        database_url=empty_database,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=prefix,
        health_port=port,
        json_logs=False,
    )


async def count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(effects))).scalar_one())


async def test_worker_runs_consumers_jobs_relay_and_readiness_then_stops(
    engine: AsyncEngine, empty_database: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    sessions = async_sessionmaker(engine)
    writer = OutboxWriter(outbox, source="/test")
    built: list[EventConsumer] = []

    def consumers(dead_letters: DeadLetterSink) -> list[EventConsumer]:
        consumer = EventConsumer(
            name="test-worker-consumer",
            session_factory=sessions,
            inbox=inbox,
            dead_letters=dead_letters,
            topic_prefix=topic_prefix,
        )

        @consumer.on(MemberRegisteredV1)
        async def handle(ev: MemberRegisteredV1, session: AsyncSession, _e: Envelope) -> None:
            await session.execute(effects.insert().values(member_id=ev.member_id, note="seen"))

        built.append(consumer)
        return [consumer]

    job_runs = 0

    async def job(stop: asyncio.Event) -> None:
        # A periodic job: writes one event to the outbox, which the relay publishes and
        # the consumer then handles, and waits for the stop.
        nonlocal job_runs
        job_runs += 1
        async with sessions() as session, session.begin():
            await writer.add(session, registered("from the job"))
        await stop.wait()

    async def database() -> bool:
        return True

    port = free_port()
    relay = OutboxRelay(
        engine=engine,
        table=outbox,
        bootstrap_servers=kafka_bootstrap,
        client_id="test-worker-relay",
        topic_prefix=topic_prefix,
        poll_interval=0.05,
    )
    stop = asyncio.Event()
    worker = asyncio.create_task(
        run_worker(
            service="test",
            settings=settings(empty_database, kafka_bootstrap, topic_prefix, port),
            consumers=consumers,
            jobs=[job],
            relay=relay,
            readiness={"database": database},
            workers={"test-worker-consumer": 2},
            stop=stop,
        )
    )
    try:
        # The relay published the job's event, and the subscribed consumer handled it.
        await wait_until(lambda: count(engine), timeout=60, message="the consumer's effect")
        (record,) = await read_topic(
            kafka_bootstrap, topic_prefix + REGISTRY_MEMBERS.name, expect=1
        )
        envelope = decode(headers_from_kafka(record.headers), record.value)
        assert envelope.data["given_name"] == "from the job"
        assert job_runs == 1

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

            async def ready() -> bool:
                try:
                    return (await client.get("/health/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(ready, timeout=30, message="readiness")
            body = (await client.get("/health/ready")).json()
            assert body["checks"] == {"database": True, "broker": True, "consumer": True}
            assert (await client.get("/health/live")).json() == {"status": "ok"}
    finally:
        stop.set()
    await asyncio.wait_for(worker, timeout=30)  # returns once stopped, without error
    assert len(built) == 1


async def test_a_failing_task_stops_the_worker_with_its_error(
    engine: AsyncEngine, empty_database: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    other_stopped = asyncio.Event()

    async def failing(stop: asyncio.Event) -> None:
        raise RuntimeError("the job broke")

    async def patient(stop: asyncio.Event) -> None:
        await stop.wait()
        other_stopped.set()

    with pytest.raises(RuntimeError, match="the job broke"):
        await asyncio.wait_for(
            run_worker(
                service="test",
                settings=settings(empty_database, kafka_bootstrap, topic_prefix, free_port()),
                consumers=lambda _dead_letters: [],
                jobs=[failing, patient],
            ),
            timeout=60,
        )
    # The other tasks were told to stop and finished before the error was raised.
    assert other_stopped.is_set()
