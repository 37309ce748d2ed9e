"""What crypto-shredding costs: outbox writer, relay and a consumer, sealing on and off.

One run, real PostgreSQL and Kafka, the same N ``registry.member.registered`` events
(whole profile, ~1.3 KB of JSON, one person each) and the same settings for both modes:

1. **writer**: the events written with the real :class:`OutboxWriter` (``add_many``,
   500 per transaction), sealing off, then on (AES-256-GCM per event, each person's
   data key from a :class:`KeyResolver` whose key service is in memory: the cost of
   sealing, not of a network round trip per person);
2. **relay**: the real :class:`OutboxRelay` publishing all of them (timed until none is
   unpublished); with sealing on, the rows are already sealed (the relay ships bytes);
3. **consumer**: the real :class:`EventConsumer` (inbox row and a handler's insert in one
   transaction per event) reading every record back from Kafka; with sealing on, each
   record is opened with its person's key (a cold cache: one key fetch per person, as
   in a rebuild from offset 0). Timed from the first records fetched (not the group
   join).

Rounds alternate which mode goes first; medians are printed. Run from the root::

    uv run python bench/crypto_shredding.py                 # 2000 events, 2 rounds
    uv run python bench/crypto_shredding.py --events 2000 --rounds 1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import _bootstrap  # noqa: F401  (keeps bench/ off sys.path: see bench/_bootstrap.py)
import structlog
from aiokafka import AIOKafkaConsumer
from sqlalchemy import Column, MetaData, Table, Text, Uuid
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from uuid_utils.compat import uuid7

from diaspora_devstack.testing import (
    asyncpg_url,
    create_database,
    delete_topics_with_prefix,
    drop_database,
    unique_name,
)
from diaspora_events.consumer import EventConsumer, inbox_table, record_from_kafka
from diaspora_events.contracts import MemberRegisteredV1
from diaspora_events.contracts.registry import (
    Availability,
    City,
    Consent,
    Education,
    MemberProfile,
    Occupation,
    Skill,
)
from diaspora_events.kafka import ensure_topics
from diaspora_events.outbox import OutboxRelay, OutboxWriter, outbox_table
from diaspora_events.shredding import KeyResolver, new_data_key
from diaspora_events.topics import REGISTRY_MEMBERS, with_prefix

SOURCE = "/tg/diaspora/bench"


def event(n: int) -> MemberRegisteredV1:
    at = datetime(2026, 1, 1, 12, tzinfo=UTC)
    profile = MemberProfile(
        given_name=f"Given{n:07d}",
        family_name=f"Family{n:07d}",
        date_of_birth=date(1980 + n % 30, 1 + n % 12, 1 + n % 28),
        sex="female",
        email=f"bench{n:07d}@example.org",
        phone=f"+3361{n:07d}",
        country_of_residence="FR",
        city=City(geonames_id=2996944, name="Lyon", latitude=45.75, longitude=4.85),
        embassy_id="fr-paris",
        arrival_year=2010,
        languages=["fr", "ee", "en"],
        occupations=[Occupation(isco_code="2212", title="Chirurgienne pédiatrique")],
        skills=[Skill(label="Chirurgie néonatale"), Skill(label="Formation des équipes")],
        education=[Education(isced_level=8, institution="Université de Lomé", country="TG")],
        availability=Availability(mission_types=["medical", "teaching"], remote=True),
        consents=[Consent(purpose="contact_for_missions", granted=True, at=at)],
    )
    return MemberRegisteredV1(
        member_id=uuid7(),
        given_name=profile.given_name,
        family_name=profile.family_name,
        date_of_birth=profile.date_of_birth,
        email=profile.email,
        phone=profile.phone,
        country_of_residence="FR",
        registered_at=at,
        profile=profile,
    )


class MemoryKeys:
    """A key service in this process: one data key per person, created on first ask."""

    def __init__(self) -> None:
        self.keys: dict[UUID, bytes | None] = {}
        self.asked = 0

    async def fetch(self, subjects: list[UUID]) -> dict[UUID, bytes | None]:
        self.asked += 1
        return {s: self.keys.setdefault(s, new_data_key()) for s in subjects}


metadata = MetaData()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
seen = Table("seen", metadata, Column("member_id", Uuid), Column("email", Text))


async def write(engine: AsyncEngine, events: list[MemberRegisteredV1], keys: Any) -> float:
    writer = OutboxWriter(outbox, source=SOURCE, keys=keys)
    started = time.perf_counter()
    for start in range(0, len(events), 500):
        async with AsyncSession(engine) as session, session.begin():
            await writer.add_many(session, list(events[start : start + 500]))
    return time.perf_counter() - started


async def relay(engine: AsyncEngine, bootstrap: str, prefix: str, count: int) -> float:
    runner = OutboxRelay(
        engine=engine,
        table=outbox,
        bootstrap_servers=bootstrap,
        client_id="bench-relay",
        topic_prefix=prefix,
        poll_interval=0.05,
    )
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(runner.run(stop))
    while runner.published_total < count:
        if task.done():
            raise RuntimeError(f"relay stopped: {task.exception()!r}")
        await asyncio.sleep(0.002)
    seconds = time.perf_counter() - started
    stop.set()
    await task
    return seconds


async def consume(
    engine: AsyncEngine, bootstrap: str, prefix: str, count: int, keys: KeyResolver | None
) -> float:
    async def no_dead_letters(**_record: Any) -> None:
        raise RuntimeError("a record was dead-lettered")

    consumer = EventConsumer(
        name=f"bench-consumer-{prefix}",
        session_factory=async_sessionmaker(engine, class_=AsyncSession),
        inbox=inbox,
        dead_letters=no_dead_letters,
        topic_prefix=prefix,
        keys=keys,
    )

    @consumer.on(MemberRegisteredV1)
    async def registered(event: MemberRegisteredV1, session: AsyncSession, _: object) -> None:
        await session.execute(seen.insert().values(member_id=event.member_id, email=event.email))

    kafka = AIOKafkaConsumer(
        *consumer.topics,
        bootstrap_servers=bootstrap,
        group_id=consumer.group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await kafka.start()
    handled = 0
    started: float | None = None  # from the first records (the group join is not timed)
    try:
        while handled < count:
            batches = await kafka.getmany(timeout_ms=500, max_records=500)
            if batches and started is None:
                started = time.perf_counter()
            for records in batches.values():
                for raw in records:
                    outcome = await consumer.handle_record(record_from_kafka(raw))
                    if outcome.value != "handled":
                        raise RuntimeError(f"record {raw.offset}: {outcome}")
                    handled += 1
            await kafka.commit()
    finally:
        await kafka.stop()
    assert started is not None
    return time.perf_counter() - started


async def one_mode(
    server: str, bootstrap: str, events: list[MemberRegisteredV1], sealed: bool
) -> dict[str, float]:
    database = await create_database(server, "bench_shred")
    prefix = unique_name("bench") + "."
    engine = create_async_engine(asyncpg_url(database), pool_size=5)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        await ensure_topics(bootstrap, [with_prefix(REGISTRY_MEMBERS, prefix)])
        service = MemoryKeys()
        writer_keys = KeyResolver(service.fetch, ttl=0.0) if sealed else None
        consumer_keys = KeyResolver(service.fetch, ttl=300.0) if sealed else None
        n = len(events)
        write_s = await write(engine, events, writer_keys)
        relay_s = await relay(engine, bootstrap, prefix, n)
        consume_s = await consume(engine, bootstrap, prefix, n, consumer_keys)
        return {"writer": n / write_s, "relay": n / relay_s, "consumer": n / consume_s}
    finally:
        await engine.dispose()
        await delete_topics_with_prefix(bootstrap, prefix)
        await drop_database(database)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    server = os.environ.get("DIASPORA_PG_URL", "postgresql://postgres@127.0.0.1:55432")
    bootstrap = os.environ.get("DIASPORA_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    events = [event(n) for n in range(args.events)]
    size = len(events[0].model_dump_json())
    results: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for round_ in range(args.rounds):
        order = (False, True) if round_ % 2 == 0 else (True, False)
        for sealed in order:
            results[sealed].append(await one_mode(server, bootstrap, events, sealed))
            figures = results[sealed][-1]
            print(
                f"round {round_ + 1} sealing {'on ' if sealed else 'off'}: "
                + "  ".join(f"{k} {v:,.0f}/s" for k, v in figures.items()),
                flush=True,
            )
    print(f"\n{args.events} events of ~{size} bytes of JSON, {args.rounds} round(s), medians:")
    print("| stage | sealing off (events/s) | sealing on (events/s) | on/off |")
    print("|---|---|---|---|")
    for stage in ("writer", "relay", "consumer"):
        off = statistics.median(r[stage] for r in results[False])
        on = statistics.median(r[stage] for r in results[True])
        print(f"| {stage} | {off:,.0f} | {on:,.0f} | {on / off:.2f} |")


if __name__ == "__main__":
    asyncio.run(main())
