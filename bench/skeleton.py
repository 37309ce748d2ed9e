"""Benchmarks of the walking skeleton (issue 2), against the real PostgreSQL and Kafka.

Two measurements, in one run:

1. **Outbox relay throughput.** N outbox rows of ~1 KB ``MemberRegisteredV1``
   events are written with the real :class:`OutboxWriter` into a fresh database;
   the real :class:`OutboxRelay` then publishes all of them (timed until no row is
   unpublished). Reference: a plain idempotent ``AIOKafkaProducer`` (acks=all)
   sending the same values, keys and headers to another fresh topic. Several
   rounds, alternating which side goes first; medians are reported.
   Target: relay/plain >= 0.6.

2. **Registration -> first email latency.** ``registry-api`` (uvicorn, as deployed),
   ``registry-relay`` and ``notifications-worker`` as real subprocesses, and a
   real SMTP server (aiosmtpd ``Mailbox``, in a thread of this process, next to
   the load generator).
   Registrations are POSTed on an open-loop schedule (default 50/s for 60 s);
   for each, the time from just before the POST to the arrival of its first email
   at the SMTP server: the verification of the address (issue 15; the welcome
   follows the person's confirmation, so it is not on this path). Targets: p99 <
   500 ms, none lost.

Run from the repository root::

    uv run python bench/skeleton.py                  # full default run (~4 minutes)
    uv run python bench/skeleton.py --events 5000 --rounds 1 --duration 10
    uv run python bench/skeleton.py --json > result.json

A missed target is reported as MISSED; the exit status is non-zero only on errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import itertools
import json
import logging
import math
import os
import platform
import signal
import statistics
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import _bootstrap  # noqa: F401  (keeps bench/ off sys.path: see bench/_bootstrap.py)
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import MetaData, Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool
from uuid_utils.compat import uuid7

from diaspora_devstack import stack
from diaspora_devstack.config import StackConfig
from diaspora_devstack.testing import (
    ServiceProcess,
    asyncpg_url,
    create_database,
    drop_database,
    free_port,
    migrate,
    serve_app,
    service_env,
    unique_name,
)
from diaspora_events.cloudevents import encode, headers_to_kafka
from diaspora_events.contracts import MemberRegisteredV1
from diaspora_events.kafka import ensure_topics
from diaspora_events.observability import setup_observability
from diaspora_events.outbox import OutboxRelay, OutboxWriter, outbox_table
from diaspora_events.topics import REGISTRY_MEMBERS, Topic, with_prefix
from diaspora_service.db import make_engine

RELAY_RATIO_TARGET = 0.6
P99_TARGET_MS = 500.0
EVENT_SOURCE = "/tg/diaspora/bench"
# The relay adds the publish span's W3C trace context to every record; the plain
# producer sends a header of the same size so both write the same bytes.
SAMPLE_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def progress(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending sequence (None when empty)."""
    if not ordered:
        return None
    rank = max(0, math.ceil(p / 100 * len(ordered)) - 1)
    return ordered[min(rank, len(ordered) - 1)]


def distribution_ms(seconds: Sequence[float]) -> dict[str, float | None]:
    ordered = sorted(s * 1000 for s in seconds)
    return {
        "p50": percentile(ordered, 50),
        "p95": percentile(ordered, 95),
        "p99": percentile(ordered, 99),
        "max": ordered[-1] if ordered else None,
    }


def fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f}"


class Interrupts:
    """Ctrl-C and SIGTERM cancel the run, whose clean-up then drops the databases,
    stops the processes and deletes the topics.

    Installed on the event loop, and again once uvicorn has started (uvicorn
    takes SIGINT and SIGTERM over while it serves).
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._task: asyncio.Task[Any] | None = None

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = self._task or asyncio.current_task()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: int) -> None:
        if self.received is not None:
            progress("still cleaning up (databases, processes, topics); please wait")
            return
        self.received = sig
        progress(f"{signal.Signals(sig).name}: stopping and cleaning up")
        if self._task is not None:
            self._task.cancel()


INTERRUPTS = Interrupts()


# --------------------------------------------------------------------------- #
# 1. Outbox relay throughput
# --------------------------------------------------------------------------- #


def big_event(n: int, padding: int) -> MemberRegisteredV1:
    """A registration whose JSON value is ~``padding`` bytes larger than the bare one."""
    half = padding // 2
    return MemberRegisteredV1(
        member_id=uuid7(),
        given_name=f"Given{n:08d} " + "a" * half,
        family_name="Family " + "b" * (padding - half),
        date_of_birth=date(1990, 4, 27),
        email=f"bench{n:08d}@example.org",
        phone="+33612345678",
        country_of_residence="FR",
        preferred_language="fr",
        registered_at=datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC),
    )


def padding_for(value_bytes: int) -> int:
    bare = len(encode(big_event(0, 0), source=EVENT_SOURCE)[2])
    return max(0, value_bytes - bare)


async def fill_outbox(
    engine: AsyncEngine,
    table: Table,
    *,
    count: int,
    padding: int,
    writers: int = 4,
    per_transaction: int = 500,
) -> float:
    """Write ``count`` events with the real OutboxWriter; returns the seconds taken."""
    writer = OutboxWriter(table, source=EVENT_SOURCE)
    numbers: Iterator[int] = iter(range(count))

    async def write() -> None:
        while chunk := list(itertools.islice(numbers, per_transaction)):
            async with AsyncSession(engine) as session, session.begin():
                for n in chunk:
                    event = big_event(n, padding)
                    await writer.add(session, event, subject=str(event.member_id))

    started = time.monotonic()
    await asyncio.gather(*(write() for _ in range(writers)))
    return time.monotonic() - started


async def unpublished_count(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as conn:
        found = await conn.scalar(
            select(func.count()).select_from(table).where(table.c.published_at.is_(None))
        )
    return int(found or 0)


@dataclass
class RelayTiming:
    seconds: float
    first_half_rate: float
    second_half_rate: float


async def time_relay(
    engine: AsyncEngine,
    table: Table,
    *,
    bootstrap: str,
    topic_prefix: str,
    count: int,
    batch_size: int,
    give_up_after: float,
) -> RelayTiming:
    """Run the real relay until it has published ``count`` rows."""
    relay = OutboxRelay(
        engine=engine,
        table=table,
        bootstrap_servers=bootstrap,
        client_id="bench-relay",
        topic_prefix=topic_prefix,
        batch_size=batch_size,
    )
    stop = asyncio.Event()
    gc.collect()
    started = time.monotonic()
    task = asyncio.create_task(relay.run(stop))
    half: tuple[float, int] | None = None
    try:
        # published_total grows once the batch's UPDATE has committed, so reaching
        # ``count`` is the moment no row is left unpublished.
        while relay.published_total < count:
            if task.done():
                raise RuntimeError(f"relay stopped early: {task.exception()!r}")
            if time.monotonic() - started > give_up_after:
                raise TimeoutError(
                    f"relay published {relay.published_total}/{count} in {give_up_after:.0f} s"
                )
            await asyncio.sleep(0.005)
            if half is None and relay.published_total >= count / 2:
                half = (time.monotonic(), relay.published_total)
        finished = time.monotonic()
    finally:
        stop.set()
        await task
    half = half or (finished, count)
    return RelayTiming(
        seconds=finished - started,
        first_half_rate=half[1] / max(half[0] - started, 1e-9),
        second_half_rate=(count - half[1]) / max(finished - half[0], 1e-9),
    )


KafkaRecord = tuple[bytes, list[tuple[str, bytes]], bytes]


async def outbox_records(engine: AsyncEngine, table: Table) -> list[KafkaRecord]:
    """The keys, headers and values the relay sends, as a producer takes them."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(table.c.key, table.c.headers, table.c.value).order_by(table.c.id)
            )
        ).all()
    return [
        (
            row.key.encode(),
            headers_to_kafka({**row.headers, "traceparent": SAMPLE_TRACEPARENT}),
            bytes(row.value),
        )
        for row in rows
    ]


async def time_plain(bootstrap: str, topic: str, records: Sequence[KafkaRecord]) -> float:
    """A bare idempotent producer sending ``records``; seconds until all are acknowledged."""
    gc.collect()
    started = time.monotonic()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, client_id="bench-plain", enable_idempotence=True, acks="all"
    )
    await producer.start()
    try:
        deliveries = []
        for key, headers, value in records:
            deliveries.append(await producer.send(topic, value=value, key=key, headers=headers))
        await asyncio.gather(*deliveries)
        return time.monotonic() - started
    finally:
        await producer.stop()


async def topic_record_count(bootstrap: str, topic: Topic) -> int:
    """Records on ``topic`` (sum of its partitions' end offsets; no transactions here)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, client_id="bench-count")
    await consumer.start()
    try:
        partitions = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        return int(sum(ends.values()))
    finally:
        await consumer.stop()


async def delete_topics(bootstrap: str, prefixes: Sequence[str]) -> None:
    """Best effort: remove the topics this run created."""
    if not prefixes:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-cleanup")
    try:
        await admin.start()
        names = [t for t in await admin.list_topics() if t.startswith(tuple(prefixes))]
        if names:
            await admin.delete_topics(names)
    except Exception as error:
        progress(f"could not delete topics {prefixes}: {error!r}")
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


@dataclass
class RelayRound:
    round: int
    order: str
    fill_seconds: float
    fill_rate: float
    relay_seconds: float
    relay_rate: float
    relay_first_half_rate: float
    relay_second_half_rate: float
    plain_seconds: float
    plain_rate: float
    ratio: float
    relay_records_on_topic: int
    plain_records_on_topic: int


@dataclass
class RelayResult:
    events: int
    value_bytes: int
    record_bytes: int
    batch_size: int
    rounds: list[RelayRound]
    relay_rate_median: float
    plain_rate_median: float
    ratio_median: float
    target: float = RELAY_RATIO_TARGET

    @property
    def met(self) -> bool:
        return self.ratio_median >= self.target


async def bench_relay(
    pg_url: str,
    bootstrap: str,
    *,
    events: int,
    rounds: int,
    value_bytes: int,
    batch_size: int,
    cleanup: contextlib.AsyncExitStack,
) -> RelayResult:
    database = await create_database(pg_url, "bench_relay")
    cleanup.push_async_callback(drop_database, database)
    progress(f"relay bench: database {database.rsplit('/', 1)[1]}")
    engine = make_engine(asyncpg_url(database))
    cleanup.push_async_callback(engine.dispose)
    padding = padding_for(value_bytes)
    prefixes: list[str] = []
    cleanup.push_async_callback(delete_topics, bootstrap, prefixes)
    results: list[RelayRound] = []
    actual_value = record_size = 0
    for number in range(1, rounds + 1):
        metadata = MetaData()
        table = outbox_table(metadata)
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
            await conn.run_sync(metadata.create_all)
        fill_seconds = await fill_outbox(engine, table, count=events, padding=padding)
        progress(
            f"round {number}: wrote {events:,} outbox rows in {fill_seconds:.1f} s "
            f"({events / fill_seconds:,.0f}/s)"
        )
        relay_prefix = unique_name("bench_relay") + "."
        plain_prefix = unique_name("bench_plain") + "."
        prefixes += [relay_prefix, plain_prefix]
        relay_topic = with_prefix(REGISTRY_MEMBERS, relay_prefix)
        plain_topic = with_prefix(REGISTRY_MEMBERS, plain_prefix)
        await ensure_topics(bootstrap, [relay_topic, plain_topic])

        async def run_relay(
            table: Table = table, prefix: str = relay_prefix, number: int = number
        ) -> RelayTiming:
            timing = await time_relay(
                engine,
                table,
                bootstrap=bootstrap,
                topic_prefix=prefix,
                count=events,
                batch_size=batch_size,
                give_up_after=max(600.0, events / 50),
            )
            left = await unpublished_count(engine, table)
            if left:
                raise RuntimeError(f"{left} rows still unpublished after the relay finished")
            progress(f"round {number}: relay {events / timing.seconds:,.0f} events/s")
            return timing

        async def run_plain(
            table: Table = table, topic: str = plain_topic.name, number: int = number
        ) -> float:
            records = await outbox_records(engine, table)
            seconds = await time_plain(bootstrap, topic, records)
            del records
            progress(f"round {number}: plain producer {events / seconds:,.0f} events/s")
            return seconds

        if number % 2:
            order = "relay, plain"
            relay_timing = await run_relay()
            plain_seconds = await run_plain()
        else:
            order = "plain, relay"
            plain_seconds = await run_plain()
            relay_timing = await run_relay()
        if number == 1:
            sample = (await outbox_records(engine, table))[:1]
            actual_value = len(sample[0][2])
            record_size = (
                actual_value + len(sample[0][0]) + sum(len(k) + len(v) for k, v in sample[0][1])
            )
        relay_count = await topic_record_count(bootstrap, relay_topic)
        plain_count = await topic_record_count(bootstrap, plain_topic)
        results.append(
            RelayRound(
                round=number,
                order=order,
                fill_seconds=fill_seconds,
                fill_rate=events / fill_seconds,
                relay_seconds=relay_timing.seconds,
                relay_rate=events / relay_timing.seconds,
                relay_first_half_rate=relay_timing.first_half_rate,
                relay_second_half_rate=relay_timing.second_half_rate,
                plain_seconds=plain_seconds,
                plain_rate=events / plain_seconds,
                ratio=plain_seconds / relay_timing.seconds,
                relay_records_on_topic=relay_count,
                plain_records_on_topic=plain_count,
            )
        )
        await delete_topics(bootstrap, [relay_prefix, plain_prefix])
    return RelayResult(
        events=events,
        value_bytes=actual_value,
        record_bytes=record_size,
        batch_size=batch_size,
        rounds=results,
        relay_rate_median=statistics.median(r.relay_rate for r in results),
        plain_rate_median=statistics.median(r.plain_rate for r in results),
        ratio_median=statistics.median(r.ratio for r in results),
    )


# --------------------------------------------------------------------------- #
# 2. Registration -> first email latency
# --------------------------------------------------------------------------- #


class TimedSmtpSink(asyncio.Protocol):
    """A minimal SMTP server noting when each recipient's message arrived.

    It speaks what the notifications worker's client sends (EHLO, MAIL, RCPT, DATA,
    RSET, NOOP, QUIT) and stamps ``time.monotonic()`` (the clock of the load
    generator) for each recipient as soon as the message's final ``.`` is in, before
    answering 250. It neither parses nor keeps messages: it runs in the bench process
    next to the load generator and must cost as little as possible (aiosmtpd and the
    email parser took several ms of CPU per message).
    """

    def __init__(self, arrivals: dict[str, list[float]]) -> None:
        self._arrivals = arrivals
        self._buffer = b""
        self._in_data = False
        self._recipients: list[str] = []
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(b"220 bench ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._buffer += data
        while True:
            if self._in_data:
                end = self._buffer.find(b"\r\n.\r\n")
                if end < 0:
                    return
                arrived = time.monotonic()
                for recipient in self._recipients:
                    self._arrivals.setdefault(recipient, []).append(arrived)
                self._buffer = self._buffer[end + 5 :]
                self._in_data, self._recipients = False, []
                self._transport.write(b"250 OK queued\r\n")
                continue
            line_end = self._buffer.find(b"\r\n")
            if line_end < 0:
                return
            line, self._buffer = self._buffer[:line_end], self._buffer[line_end + 2 :]
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self._transport.write(b"250-bench\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n")
            elif verb == b"RCPT":
                address = line.split(b":", 1)[1].split(b">", 1)[0].strip(b" <")
                self._recipients.append(address.decode().lower())
                self._transport.write(b"250 OK\r\n")
            elif verb == b"DATA":
                self._in_data = True
                self._transport.write(b"354 go ahead\r\n")
            elif verb == b"RSET":
                self._recipients = []
                self._transport.write(b"250 OK\r\n")
            elif verb == b"QUIT":
                self._transport.write(b"221 bye\r\n")
                self._transport.close()
                return
            else:  # MAIL, NOOP
                self._transport.write(b"250 OK\r\n")


class Mail:
    """The bench's SMTP server: arrivals per recipient (lower-cased address)."""

    host = "127.0.0.1"

    def __init__(self) -> None:
        self._arrivals: dict[str, list[float]] = {}
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: TimedSmtpSink(self._arrivals), self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=5)

    def arrivals(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self._arrivals.items()}

    def arrived_count(self, addresses: set[str]) -> int:
        return sum(1 for a in addresses if a in self._arrivals)


class LoadClient:
    """The load generator's HTTP/1.1 client: keep-alive connections fed from one queue.

    A request is queued at the moment the schedule says (its latency counts from
    there, queueing included) and goes out on the first free connection. httpx did
    the same job with several ms of CPU per request in this process, and its
    connection pool's cost grew with the number of waiting requests, so an overloaded
    API made the generator itself the bottleneck.
    """

    def __init__(self, base_url: str, *, connections: int = 64, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self._connections = connections
        self._timeout = timeout
        self._queue: asyncio.Queue[tuple[bytes, asyncio.Future[tuple[int, bytes]]]] = (
            asyncio.Queue()
        )
        self._workers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> LoadClient:
        self._workers = [asyncio.create_task(self._connection()) for _ in range(self._connections)]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    def post_json(
        self, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> asyncio.Future[tuple[int, bytes]]:
        payload = json.dumps(body).encode()
        head = "".join(
            [
                f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n",
                "Content-Type: application/json\r\n",
                f"Content-Length: {len(payload)}\r\n",
                *(f"{name}: {value}\r\n" for name, value in headers.items()),
                "\r\n",
            ]
        )
        answer: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((head.encode() + payload, answer))
        return answer

    async def _connection(self) -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        last_used = 0.0
        while True:
            request, answer = await self._queue.get()
            if answer.done():
                continue
            try:
                # uvicorn closes connections idle for 5 s: never send on an old one.
                if writer is None or writer.is_closing() or time.monotonic() - last_used > 3:
                    if writer is not None:
                        writer.close()
                    reader, writer = await asyncio.open_connection(self.host, self.port)
                assert reader is not None
                writer.write(request)
                status, body, close = await asyncio.wait_for(
                    _read_response(reader), timeout=self._timeout
                )
                last_used = time.monotonic()
                if close:
                    writer.close()
                    writer = None
                if not answer.done():
                    answer.set_result((status, body))
            except Exception as error:
                if writer is not None:
                    writer.close()
                    writer = None
                if not answer.done():
                    answer.set_exception(error)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body and whether the server closes the connection."""
    status_line = await reader.readuntil(b"\r\n")
    status = int(status_line.split(b" ", 2)[1])
    length, chunked, close = 0, False, False
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value:
            chunked = True
        elif name == b"connection" and value == b"close":
            close = True
    if not chunked:
        return status, await reader.readexactly(length), close
    parts = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
    await reader.readuntil(b"\r\n")
    return status, b"".join(parts), close


@dataclass
class Registration:
    email: str
    scheduled: float
    headers: dict[str, str] = field(default_factory=dict)
    sent: float = 0.0
    answered: float = 0.0
    status: int = 0
    error: str = ""


_SYLLABLES = (
    "ko", "fi", "ma", "se", "nu", "da", "ye", "lo", "ka", "mi",
    "to", "ba", "ze", "wu", "ga", "pe", "ri", "so", "vi", "ha",
)  # fmt: skip


def _word(n: int, length: int) -> str:
    """A made-up name, distinct for each ``n`` below 20**length."""
    parts = []
    for _ in range(length):
        n, rest = divmod(n, len(_SYLLABLES))
        parts.append(_SYLLABLES[rest])
    return "".join(parts).capitalize()


def registration_body(email: str, n: int) -> dict[str, str]:
    """Person ``n``: distinct name, birth date and phone number.

    Distinct people, as real registrations are: the registry's duplicate detection
    (issue 4) compares each registration with the look-alike records already there
    and publishes an event per likely pair. With 3,000 near-identical people (same
    given name, birth date and phone) it published thousands of such events per
    second and the bench measured that instead of registrations.
    """
    scrambled = (n * 7919 + 13) % 20**4
    return {
        "given_name": _word(scrambled, 3),
        "family_name": _word(scrambled // 7 + n, 4),
        "date_of_birth": (date(1950, 1, 1) + timedelta(days=(n * 7919) % 20_000)).isoformat(),
        "country_of_residence": "FR",
        "email": email,
        "phone": f"+3361{n % 10_000_000:07d}",
        "preferred_language": "fr" if n % 3 else "en",
    }


async def register(client: LoadClient, item: Registration, n: int) -> None:
    body = registration_body(item.email, n)
    item.sent = time.monotonic()
    try:
        item.status, answer = await client.post_json("/members", body, item.headers)
        if item.status != 201:
            item.error = answer[:300].decode(errors="replace")
    except Exception as error:
        item.error = repr(error)
    item.answered = time.monotonic()


@dataclass
class StageTimes:
    """Where the time goes, from the services' own timestamps (same host clock)."""

    outbox_to_published: list[float] = field(default_factory=list)
    outbox_to_consumed: list[float] = field(default_factory=list)
    consumed_to_smtp_sent: list[float] = field(default_factory=list)


async def fetch_all(database_url: str, query: str) -> list[Any]:
    engine = create_async_engine(asyncpg_url(database_url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(query))).all())
    finally:
        await engine.dispose()


async def stage_times(registry_db: str, notifications_db: str, emails: set[str]) -> StageTimes:
    stages = StageTimes()
    outbox_rows = await fetch_all(
        registry_db,
        "SELECT event_id, value, created_at, published_at FROM outbox "
        "WHERE event_type = 'registry.member.registered'",
    )
    consumed = {
        r.event_id: r.received_at
        for r in await fetch_all(notifications_db, "SELECT event_id, received_at FROM inbox")
    }
    sent = {
        r.cause_event_id: (r.created_at, r.sent_at)
        for r in await fetch_all(
            notifications_db,
            "SELECT cause_event_id, created_at, sent_at FROM deliveries WHERE status = 'sent'",
        )
    }
    for row in outbox_rows:
        if json.loads(row.value).get("email", "").lower() not in emails:
            continue
        event_id: UUID = row.event_id
        if row.published_at is not None:
            stages.outbox_to_published.append((row.published_at - row.created_at).total_seconds())
        if event_id in consumed:
            stages.outbox_to_consumed.append((consumed[event_id] - row.created_at).total_seconds())
        if event_id in sent and sent[event_id][1] is not None:
            created, sent_at = sent[event_id]
            stages.consumed_to_smtp_sent.append((sent_at - created).total_seconds())
    return stages


@dataclass
class LatencyResult:
    rate: float
    duration: float
    grace: float
    sent: int
    accepted: int
    http_failed: int
    received: int
    lost: int
    duplicated: int
    extra_copies: int
    latency_ms: dict[str, float | None]
    http_ms: dict[str, float | None]
    achieved_rate: float
    max_schedule_lag_ms: float
    stages_ms: dict[str, dict[str, float | None]]
    logs: str
    timeline: list[dict[str, float | int | None]]
    cpu_ms_per_registration: dict[str, float | None]
    mail_for_failed_posts: int
    p99_target_ms: float = P99_TARGET_MS
    http_errors_sample: list[str] = field(default_factory=list)

    @property
    def p99_met(self) -> bool:
        p99 = self.latency_ms["p99"]
        return p99 is not None and p99 < self.p99_target_ms and self.received > 0

    @property
    def lost_met(self) -> bool:
        return self.lost == 0


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, from /proc (None where unavailable)."""
    try:
        after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def postgres_cpu_seconds(database_names: Sequence[str]) -> float | None:
    """CPU time of the PostgreSQL backends serving these databases (from their titles)."""
    total, found = 0.0, False
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                title = (entry / "cmdline").read_bytes().decode(errors="replace")
                if title.startswith("postgres:") and any(d in title for d in database_names):
                    seconds = process_cpu_seconds(int(entry.name))
                    if seconds is not None:
                        total, found = total + seconds, True
    return total if found else None


class CpuMeter:
    """CPU time of the bench's processes between ``start`` and ``stop``."""

    def __init__(
        self,
        processes: Sequence[ServiceProcess],
        database_names: Sequence[str],
        *,
        this_process: str,
    ):
        self._processes = processes
        self._databases = database_names
        self._this_process = this_process
        self._begin: dict[str, float | None] = {}

    def _read(self) -> dict[str, float | None]:
        readings: dict[str, float | None] = {
            f"this process ({self._this_process})": time.process_time()
        }
        for process in self._processes:
            pid = process.process.pid if process.process is not None else None
            readings[process.name] = process_cpu_seconds(pid) if pid else None
        readings["PostgreSQL backends of the bench databases"] = postgres_cpu_seconds(
            self._databases
        )
        return readings

    def start(self) -> None:
        self._begin = self._read()

    def per_event_ms(self, events: int) -> dict[str, float | None]:
        end = self._read()
        result: dict[str, float | None] = {}
        for name, before in self._begin.items():
            after = end.get(name)
            if before is None or after is None or events == 0:
                result[name] = None
            else:
                result[name] = (after - before) * 1000 / events
        return result


def timeline(
    items: Sequence[Registration],
    arrivals: dict[str, list[float]],
    start: float,
    window: float,
) -> list[dict[str, float | int | None]]:
    """Latency per window of send time: shows whether a backlog builds up."""
    rows: list[dict[str, float | int | None]] = []
    last = max((i.sent for i in items), default=start)
    begin = start
    while begin <= last:
        inside = [i for i in items if begin <= i.sent < begin + window]
        got = sorted(
            (arrivals[i.email][0] - i.sent) * 1000
            for i in inside
            if i.status == 201 and i.email in arrivals
        )
        rows.append(
            {
                "from_s": round(begin - start, 1),
                "sent": len(inside),
                "accepted": sum(1 for i in inside if i.status == 201),
                "received": len(got),
                "p50": percentile(got, 50),
                "p99": percentile(got, 99),
                "max": got[-1] if got else None,
            }
        )
        begin += window
    return rows


async def watch(processes: Sequence[ServiceProcess]) -> None:
    for process in processes:
        if not process.alive:
            raise RuntimeError(
                f"{process.name} exited early; last lines of {process.log_path}:\n"
                + process.log_tail()
            )


async def wait_for_stable_group(
    bootstrap: str, group: str, *, within: float, processes: Sequence[ServiceProcess]
) -> int:
    """Wait until the consumer group has been Stable, with the same members, for longer
    than a heartbeat interval (a member still joining would have started a rebalance
    by then); returns the number of members."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-group-watch")
    await admin.start()
    try:
        deadline = time.monotonic() + within
        since, seen = time.monotonic(), (-1, "")
        while time.monotonic() < deadline:
            await watch(processes)
            described = (await admin.describe_consumer_groups([group]))[0].groups[0]
            state = (len(described[5]), described[2])  # (members, state)
            if state != seen or state[1] != "Stable":
                since, seen = time.monotonic(), state
            elif time.monotonic() - since > 4.0:
                return state[0]
            await asyncio.sleep(0.5)
        raise RuntimeError(f"consumer group {group} not stable after {within:.0f} s: {seen}")
    finally:
        await admin.close()


async def wait_for_mail(
    mailbox: Mail,
    addresses: set[str],
    *,
    within: float,
    processes: Sequence[ServiceProcess],
) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if mailbox.arrived_count(addresses) >= len(addresses):
            return True
        await watch(processes)
        await asyncio.sleep(0.05)
    return mailbox.arrived_count(addresses) >= len(addresses)


class Citizens:
    """Bearer tokens for self-registrations, when the registry requires them.

    With ``diaspora_identity`` present and OIDC in the registry's settings, a
    development issuer (its JWKS on loopback) signs one citizen token per
    registration (a citizen registers once). Tokens are signed before the clock
    starts. Without it, registrations go without a token.
    """

    def __init__(self) -> None:
        self._issuer: Any = None
        self._testing: Any = None

    async def start(self, cleanup: contextlib.AsyncExitStack, settings_fields: set[str]) -> bool:
        if "oidc_issuer" not in settings_fields:
            return False
        try:
            self._testing = importlib.import_module("diaspora_identity.testing")
        except ImportError:
            return False
        port = free_port()
        self._issuer = self._testing.LocalIssuer(f"http://127.0.0.1:{port}/dev-idp")
        await cleanup.enter_async_context(serve_app(self._issuer.asgi_app(), port=port))
        return True

    @property
    def enabled(self) -> bool:
        return self._issuer is not None

    def settings(self) -> dict[str, Any]:
        if not self.enabled:
            return {}
        return {"oidc_issuer": self._issuer.issuer, "oidc_jwks_min_refresh_seconds": 0}

    def env(self, prefix: str) -> dict[str, str]:
        return dict(self._issuer.service_env(prefix)) if self.enabled else {}

    def headers(self, subject: str) -> dict[str, str]:
        if not self.enabled:
            return {}
        return dict(self._issuer.headers(self._testing.citizen(subject)))


async def wait_for_http(url: str, process: ServiceProcess, *, within: float) -> None:
    """Wait until ``url`` answers 200 (the service process has started)."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            await watch([process])
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{process.name} did not answer {url}; log:\n{process.log_tail()}")


async def bench_latency(
    pg_url: str,
    bootstrap: str,
    *,
    rate: float,
    duration: float,
    grace: float,
    api_process: bool,
    cleanup: contextlib.AsyncExitStack,
) -> LatencyResult:
    from registry.bootstrap import bootstrap as registry_bootstrap
    from registry.entrypoints.http import build_app
    from registry.settings import RegistrySettings

    run_id = unique_name("bench")
    topic_prefix = run_id + "."
    cleanup.push_async_callback(delete_topics, bootstrap, [topic_prefix])
    registry_db = await create_database(pg_url, "bench_registry")
    cleanup.push_async_callback(drop_database, registry_db)
    notifications_db = await create_database(pg_url, "bench_notifications")
    cleanup.push_async_callback(drop_database, notifications_db)
    # One after the other: Alembic's migration context is process-global.
    await asyncio.to_thread(migrate, "registry", registry_db)
    await asyncio.to_thread(migrate, "notifications", notifications_db)
    progress(f"latency bench: databases migrated, topic prefix {topic_prefix}")

    mailbox = Mail()
    await mailbox.start()
    cleanup.push_async_callback(mailbox.stop)
    citizens = Citizens()
    if await citizens.start(cleanup, set(RegistrySettings.model_fields)):
        progress("latency bench: registry requires bearer tokens; local issuer started")

    logs = StackConfig.from_env().state / "bench-logs" / run_id
    # Services log at INFO, as deployed; their logs go to files.
    relay = ServiceProcess(
        name="registry-relay",
        command=["registry-relay"],
        env=service_env(
            "REGISTRY",
            database_url=registry_db,
            kafka=bootstrap,
            topic_prefix=topic_prefix,
            extra={"LOG_LEVEL": "INFO", **citizens.env("REGISTRY")},
        ),
        log_path=logs / "registry-relay.log",
    )
    worker = ServiceProcess(
        name="notifications-worker",
        command=["notifications-worker"],
        env=service_env(
            "NOTIFICATIONS",
            database_url=notifications_db,
            kafka=bootstrap,
            topic_prefix=topic_prefix,
            extra={
                "LOG_LEVEL": "INFO",
                "NOTIFICATIONS_SMTP_HOST": mailbox.host,
                "NOTIFICATIONS_SMTP_PORT": str(mailbox.port),
                **citizens.env("NOTIFICATIONS"),
            },
        ),
        log_path=logs / "notifications-worker.log",
    )
    processes = [relay, worker]
    for process in processes:
        process.start()
        cleanup.push_async_callback(asyncio.to_thread, process.stop)
    progress(f"latency bench: started registry-relay and notifications-worker (logs in {logs})")

    if api_process:
        # As deployed (deploy/local/processes.toml, the images' CMD): uvicorn with its
        # default event loop (uvloop) and HTTP parser (httptools), one worker.
        api_port = free_port()
        api = ServiceProcess(
            name="registry-api",
            command=[
                "uvicorn",
                "--factory",
                "registry.entrypoints.http:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
                "--no-access-log",
            ],
            env=service_env(
                "REGISTRY",
                database_url=registry_db,
                kafka=bootstrap,
                topic_prefix=topic_prefix,
                extra={"LOG_LEVEL": "INFO", **citizens.env("REGISTRY")},
            ),
            log_path=logs / "registry-api.log",
        )
        api.start()
        cleanup.push_async_callback(asyncio.to_thread, api.stop)
        processes.append(api)
        base_url = f"http://127.0.0.1:{api_port}"
        await wait_for_http(f"{base_url}/health/live", api, within=120)
        progress(f"latency bench: registry-api (uvicorn) listening on {base_url}")
    else:
        registry = registry_bootstrap(
            RegistrySettings(
                database_url=asyncpg_url(registry_db),
                kafka_bootstrap=bootstrap,
                topic_prefix=topic_prefix,
                environment="test",
                **citizens.settings(),
            )
        )
        cleanup.push_async_callback(registry.close)
        base_url = await cleanup.enter_async_context(serve_app(build_app(registry)))
    INTERRUPTS.install()
    client = await cleanup.enter_async_context(LoadClient(base_url))

    # Warm-up: the consumer group must have joined and every connection opened
    # before the clock starts. These registrations are not counted.
    warm_start = time.monotonic()
    for wave, size in enumerate((1, 20)):
        items = [
            Registration(
                email=f"warmup{wave}-{i}.{run_id}@example.org".lower(),
                scheduled=0.0,
                headers=citizens.headers(f"warmup{wave}-{i}.{run_id}"),
            )
            for i in range(size)
        ]
        for i, item in enumerate(items):
            await register(client, item, 4_321_017 + 100 * wave + i)  # not a load person
            if item.status != 201:
                raise RuntimeError(f"warm-up registration failed: {item.status} {item.error}")
            await asyncio.sleep(0.05)
        if not await wait_for_mail(
            mailbox, {i.email for i in items}, within=120, processes=processes
        ):
            raise RuntimeError("warm-up mail never arrived; worker log:\n" + worker.log_tail())
    # The worker's consumers (several per topic, NOTIFICATIONS_CONSUMER_WORKERS) join
    # their group one after the other; each join makes the group rebalance, which
    # stalls consumption for up to a heartbeat interval (3 s). Steady state only.
    members = await wait_for_stable_group(
        bootstrap, f"{topic_prefix}notifications", within=90, processes=processes
    )
    progress(
        f"latency bench: pipeline warm after {time.monotonic() - warm_start:.1f} s "
        f"(consumer group stable with {members} members)"
    )

    total = max(1, round(rate * duration))
    items = [
        Registration(
            email=f"load{i:06d}.{run_id}@example.org".lower(),
            scheduled=0.0,
            headers=citizens.headers(f"load{i:06d}.{run_id}"),
        )
        for i in range(total)
    ]
    tasks: list[asyncio.Task[None]] = []
    progress(f"latency bench: sending {total:,} registrations at {rate:g}/s")
    cpu = CpuMeter(
        processes,
        [registry_db.rsplit("/", 1)[1], notifications_db.rsplit("/", 1)[1]],
        this_process=(
            "load generator, SMTP server"
            if api_process
            else "registry API, load generator, SMTP server"
        ),
    )
    cpu.start()
    start = time.monotonic() + 0.2
    try:
        for i, item in enumerate(items):
            item.scheduled = start + i / rate
            delay = item.scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(register(client, item, i)))
            if i % max(1, int(rate * 5)) == 0:
                await watch(processes)
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    sending_done = time.monotonic()
    sending_span = max(i.sent for i in items) - min(i.sent for i in items)
    accepted = [i for i in items if i.status == 201]
    accepted_emails = {i.email for i in accepted}
    progress(
        f"latency bench: {len(accepted):,}/{total:,} accepted; "
        f"{mailbox.arrived_count(accepted_emails):,} emails so far; waiting up to {grace:g} s"
    )
    all_in = await wait_for_mail(
        mailbox,
        accepted_emails,
        within=max(0.0, sending_done + grace - time.monotonic()),
        processes=processes,
    )
    cpu_per_event = cpu.per_event_ms(len(accepted))
    if all_in:
        await asyncio.sleep(2.0)  # late duplicates, if any, show up now
    arrivals = mailbox.arrivals()
    latencies = [arrivals[i.email][0] - i.sent for i in accepted if i.email in arrivals]
    copies = [len(arrivals[i.email]) for i in accepted if i.email in arrivals]
    stages = await stage_times(registry_db, notifications_db, accepted_emails)
    failed = [i for i in items if i.status != 201]
    return LatencyResult(
        rate=rate,
        duration=duration,
        grace=grace,
        sent=total,
        accepted=len(accepted),
        http_failed=len(failed),
        received=len(latencies),
        lost=len(accepted) - len(latencies),
        duplicated=sum(1 for c in copies if c > 1),
        extra_copies=sum(c - 1 for c in copies),
        latency_ms=distribution_ms(latencies),
        http_ms=distribution_ms([i.answered - i.sent for i in items if i.status == 201]),
        achieved_rate=(total - 1) / sending_span if sending_span > 0 else float(total),
        max_schedule_lag_ms=max(i.sent - i.scheduled for i in items) * 1000,
        stages_ms={
            "outbox row -> published": distribution_ms(stages.outbox_to_published),
            "outbox row -> consumed": distribution_ms(stages.outbox_to_consumed),
            "consumed -> SMTP sent": distribution_ms(stages.consumed_to_smtp_sent),
        },
        logs=str(logs),
        timeline=timeline(items, arrivals, start, window=max(5.0, duration / 12)),
        cpu_ms_per_registration=cpu_per_event,
        mail_for_failed_posts=sum(1 for i in failed if i.email in arrivals),
        http_errors_sample=sorted({f"{i.status} {i.error}" for i in failed})[:5],
    )


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def load_average() -> list[float] | None:
    with contextlib.suppress(OSError, AttributeError):
        return [round(x, 2) for x in os.getloadavg()]
    return None


def verdict(met: bool) -> str:
    return "ok" if met else "MISSED"


def render(meta: dict[str, Any], relay: RelayResult | None, latency: LatencyResult | None) -> str:
    lines = [
        f"Benchmarks of the walking skeleton - {meta['date']}",
        f"machine: {meta['machine']['cpus']} CPUs, {meta['machine']['cpu_model']}, "
        f"Python {meta['machine']['python']}",
        f"command: {meta['command']}",
        f"load average (1/5/15 min) at start {meta['load_average_start']}, "
        f"at end {meta['load_average_end']}",
        "",
    ]
    if relay is not None:
        lines += [
            f"1. Outbox relay throughput: {relay.events:,} events, value {relay.value_bytes} B "
            f"(record ~{relay.record_bytes} B with key and headers), relay batch "
            f"{relay.batch_size}",
            "   round  order          write rows/s  relay ev/s  (1st half / 2nd half)"
            "  plain ev/s  relay/plain",
        ]
        for r in relay.rounds:
            lines.append(
                f"   {r.round:>5}  {r.order:<13} {r.fill_rate:>13,.0f} {r.relay_rate:>11,.0f}"
                f"  ({r.relay_first_half_rate:>7,.0f} / {r.relay_second_half_rate:>7,.0f})"
                f" {r.plain_rate:>11,.0f} {r.ratio:>12.2f}"
            )
        lines += [
            f"   relay (median)        {relay.relay_rate_median:>10,.0f} events/s",
            f"   plain producer (med.) {relay.plain_rate_median:>10,.0f} events/s",
            f"   relay/plain (median)  {relay.ratio_median:>10.2f}   target >= "
            f"{relay.target}  {verdict(relay.met)}",
        ]
        bad = [
            r.round
            for r in relay.rounds
            if r.relay_records_on_topic != relay.events or r.plain_records_on_topic != relay.events
        ]
        lines.append(
            "   records on topics: "
            + (f"MISMATCH in rounds {bad}" if bad else "exactly N on each topic, every round")
        )
        lines.append("")
    if latency is not None:
        lat = latency.latency_ms
        p99_ok = verdict(latency.p99_met)
        lines += [
            "2. Registration -> first email latency (the address's verification email): "
            f"{latency.rate:g}/s for {latency.duration:g} s "
            f"(open loop; achieved {latency.achieved_rate:.1f}/s, "
            f"max schedule lag {latency.max_schedule_lag_ms:.1f} ms)",
            f"   sent {latency.sent:,}   accepted (201) {latency.accepted:,}   "
            f"HTTP failures {latency.http_failed:,}",
            f"   received {latency.received:,}   lost {latency.lost:,} "
            f"(grace {latency.grace:g} s)  {verdict(latency.lost_met)}   "
            f"duplicated {latency.duplicated:,} ({latency.extra_copies:,} extra copies)",
            f"   latency ms   p50 {fmt_ms(lat['p50'])}   p95 {fmt_ms(lat['p95'])}   "
            f"p99 {fmt_ms(lat['p99'])}  (target < {latency.p99_target_ms:g}: {p99_ok})   "
            f"max {fmt_ms(lat['max'])}",
            f"   HTTP POST ms p50 {fmt_ms(latency.http_ms['p50'])}   "
            f"p95 {fmt_ms(latency.http_ms['p95'])}   p99 {fmt_ms(latency.http_ms['p99'])}   "
            f"max {fmt_ms(latency.http_ms['max'])}",
            "   stages (services' timestamps, ms):",
        ]
        for name, dist in latency.stages_ms.items():
            lines.append(
                f"     {name:<26} p50 {fmt_ms(dist['p50']):>8}   p95 {fmt_ms(dist['p95']):>8}"
                f"   p99 {fmt_ms(dist['p99']):>8}   max {fmt_ms(dist['max']):>8}"
            )
        if latency.http_failed:
            lines.append(
                f"   (emails that arrived anyway for failed POSTs: {latency.mail_for_failed_posts})"
            )
        lines.append("   CPU per accepted registration (ms), sending start -> all mail in:")
        for name, value in latency.cpu_ms_per_registration.items():
            lines.append(f"     {name:<58} {fmt_ms(value):>8}")
        lines.append(
            "   timeline (by send time):   from s    sent  accepted  received"
            "    p50 ms    p99 ms    max ms"
        )
        for row in latency.timeline:
            lines.append(
                f"{'':29}{row['from_s']:>7} {row['sent']:>7} {row['accepted']:>9}"
                f" {row['received']:>9} {fmt_ms(row['p50']):>9} {fmt_ms(row['p99']):>9}"
                f" {fmt_ms(row['max']):>9}"
            )
        for sample in latency.http_errors_sample:
            lines.append(f"   HTTP error sample: {sample}")
        lines.append(f"   service logs: {latency.logs}")
    return "\n".join(lines)


def as_json(meta: dict[str, Any], relay: RelayResult | None, latency: LatencyResult | None) -> str:
    document: dict[str, Any] = {"meta": meta}
    if relay is not None:
        document["relay"] = {**asdict(relay), "met": relay.met}
    if latency is not None:
        document["latency"] = {
            **asdict(latency),
            "p99_met": latency.p99_met,
            "lost_met": latency.lost_met,
        }
    return json.dumps(document, indent=2)


# --------------------------------------------------------------------------- #
# Entry point
# --------------------------------------------------------------------------- #


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Outbox relay throughput and registration-to-first-email latency (issue 2).",
    )
    relay = parser.add_argument_group("relay throughput")
    relay.add_argument("--events", type=int, default=50_000, help="outbox rows per round")
    relay.add_argument("--rounds", type=int, default=3, help="alternating relay/plain rounds")
    relay.add_argument("--value-bytes", type=int, default=1024, help="size of each event value")
    relay.add_argument(
        "--relay-batch-size",
        type=int,
        default=500,
        help="OutboxRelay batch_size (500 is the services' default)",
    )
    latency = parser.add_argument_group("registration -> first email latency")
    latency.add_argument("--rate", type=float, default=50.0, help="registrations per second")
    latency.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    latency.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="seconds to wait for late emails after the last POST",
    )
    latency.add_argument(
        "--api",
        choices=("process", "in-process"),
        default="process",
        help="registry API as its own uvicorn process, as deployed (default), or served "
        "in this process next to the load generator and the SMTP server",
    )
    parser.add_argument("--skip-relay", action="store_true", help="only the latency bench")
    parser.add_argument("--skip-latency", action="store_true", help="only the relay bench")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.events < 2 or args.rounds < 1 or args.rate <= 0 or args.duration <= 0:
        parser.error("--events >= 2, --rounds >= 1, --rate > 0 and --duration > 0 please")
    return args


async def run(args: argparse.Namespace, endpoints: stack.Endpoints) -> str:
    INTERRUPTS.install()
    # Tracing and logging configured as in every service process.
    setup_observability("bench", json_logs=True, level="WARNING")
    # The in-process registry app sets the root logger to INFO (as deployed); the
    # bench's own tools (HTTP client, SMTP server) log each request at INFO: keep
    # them quiet, they are not part of what is measured.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    meta = {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(),
        "command": " ".join(["uv run python bench/skeleton.py", *sys.argv[1:]]),
        "kafka": endpoints.kafka_bootstrap,
        # Other work on the machine skews every figure: the 1/5/15-minute load averages.
        "load_average_start": load_average(),
    }
    relay_result: RelayResult | None = None
    latency_result: LatencyResult | None = None
    steps: list[Callable[[contextlib.AsyncExitStack], Awaitable[None]]] = []

    async def relay_step(cleanup: contextlib.AsyncExitStack) -> None:
        nonlocal relay_result
        relay_result = await bench_relay(
            endpoints.pg_url,
            endpoints.kafka_bootstrap,
            events=args.events,
            rounds=args.rounds,
            value_bytes=args.value_bytes,
            batch_size=args.relay_batch_size,
            cleanup=cleanup,
        )

    async def latency_step(cleanup: contextlib.AsyncExitStack) -> None:
        nonlocal latency_result
        latency_result = await bench_latency(
            endpoints.pg_url,
            endpoints.kafka_bootstrap,
            rate=args.rate,
            duration=args.duration,
            grace=args.grace,
            api_process=args.api == "process",
            cleanup=cleanup,
        )

    if not args.skip_relay:
        steps.append(relay_step)
    if not args.skip_latency:
        steps.append(latency_step)
    for step in steps:
        async with contextlib.AsyncExitStack() as cleanup:
            await step(cleanup)
    meta["load_average_end"] = load_average()
    if args.json:
        return as_json(meta, relay_result, latency_result)
    return render(meta, relay_result, latency_result)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    endpoints, started = stack.up()
    if started:
        progress(f"started {', '.join(started)} (left running)")
    try:
        report = asyncio.run(run(args, endpoints))
    except (Exception, KeyboardInterrupt, asyncio.CancelledError):
        if INTERRUPTS.received is None:
            raise
        # Service processes stopped by the same Ctrl-C may surface as other errors.
        progress("interrupted; databases dropped, processes stopped, topics deleted")
        return 128 + INTERRUPTS.received
    print(report, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
