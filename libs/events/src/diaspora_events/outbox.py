"""Transactional outbox: events written with the state change, published by a relay.

Why the relay never skips a row: it does not keep a cursor ("publish ids greater
than the last one seen"). Transactions allocate identity values when they insert
but may commit in another order, so a cursor would step over a row whose
transaction commits late. Instead every pass selects *all committed rows not yet
marked published*, in id order; a late commit is simply picked up by the next
pass. A single relay per service holds a PostgreSQL advisory lock, so there is
one publisher at a time and rows of one aggregate go out in the order written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring_ascii as _quoted
from typing import Any
from uuid import UUID

import structlog
from aiokafka import AIOKafkaProducer
from opentelemetry import trace
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    Uuid,
    bindparam,
    delete,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter
from tenacity.wait import wait_base

from diaspora_events.cloudevents import attributes, encode, headers_to_kafka, new_event_id
from diaspora_events.contracts.base import Event
from diaspora_events.jsontext import split_around
from diaspora_events.kafka import Kafka, idempotent_producer
from diaspora_events.metrics import (
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST_AGE,
    OUTBOX_PUBLISH_FAILURES,
    OUTBOX_PUBLISHED,
)
from diaspora_events.observability import (
    context_from_headers,
    current_traceparent,
    describe_error,
    spans_recorded,
)
from diaspora_events.shredding import DataKeySource, seal_event, seal_json, subject_of

log = structlog.get_logger(__name__)
_tracer = trace.get_tracer("diaspora_events.outbox")


def outbox_table(metadata: MetaData, name: str = "outbox") -> Table:
    """The outbox table, added to a service's own metadata (and so its migrations)."""
    return Table(
        name,
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("topic", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("event_type", Text, nullable=False),
        Column("headers", JSONB, nullable=False),
        Column("value", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("last_error", Text),
        Index(f"{name}_unpublished_idx", "id", postgresql_where=text("published_at IS NULL")),
        Index(f"{name}_key_idx", "key"),
    )


# The columns a writer fills (the others have defaults).
_WRITTEN = ("event_id", "topic", "key", "event_type", "headers", "value")


def notify_channel(table: Table) -> str:
    return f"{table.name}_new"


class OutboxWriter:
    """Adds events to the outbox inside the caller's transaction.

    With ``keys`` (crypto-shredding, :mod:`diaspora_events.shredding`), the personal
    fields of each event are sealed with its subject's data key *before* the row is
    written: the outbox table holds the same ciphertext as Kafka, so destroying the key
    also makes the outbox rows unreadable, and the relay ships bytes without keys.
    """

    def __init__(self, table: Table, *, source: str, keys: DataKeySource | None = None) -> None:
        self._table = table
        self._source = source
        self._keys = keys
        channel = literal(notify_channel(table))
        self._notify = select(func.pg_notify(channel, literal("")))
        self._insert = table.insert()
        # One statement, built once: the row and the notification in one round trip.
        added = (
            table.insert()
            .values({c: bindparam(f"p_{c}", type_=table.c[c].type) for c in _WRITTEN})
            .returning(table.c.id)
            .cte("added")
        )
        self._add_one = select(func.pg_notify(channel, literal(""))).select_from(added)

    @property
    def table(self) -> Table:
        return self._table

    @property
    def keys(self) -> DataKeySource | None:
        return self._keys

    def _sealed(self, event: Event) -> bool:
        return self._keys is not None and bool(event.personal_fields())

    async def data_keys(
        self, session: AsyncSession | None, events: Sequence[Event]
    ) -> dict[UUID, bytes | None]:
        """The data keys of the subjects of those of ``events`` that need sealing."""
        subjects = {
            s
            for e in events
            if self._sealed(e) and (s := subject_of(type(e), e.__dict__)) is not None
        }
        if not subjects or self._keys is None:
            return {}
        return dict(await self._keys.data_keys(subjects, session))

    def _encode(
        self,
        event: Event,
        *,
        subject: str | None,
        extra: Mapping[str, str] | None,
        keys: Mapping[UUID, bytes | None],
    ) -> tuple[UUID, dict[str, str], bytes]:
        if not self._sealed(event):
            return encode(event, source=self._source, subject=subject, extra_headers=extra)
        event_id = new_event_id()
        headers = attributes(
            event.event_type,
            event.event_version,
            source=self._source,
            event_id=str(event_id),
            time=datetime.now(UTC),
            subject=subject,
            extra_headers=extra,
        )
        person = subject_of(type(event), event.__dict__)
        data = seal_event(
            event,
            event_id=str(event_id),
            data_key=keys.get(person) if person is not None else None,
        )
        value = json.dumps(data, separators=(",", ":")).encode()
        return event_id, headers, value

    def row(
        self,
        event: Event,
        *,
        subject: str | None = None,
        data_keys: Mapping[UUID, bytes | None] | None = None,
    ) -> dict[str, Any]:
        """The outbox row of ``event`` (the columns a writer fills), for a caller that
        inserts it within a statement of its own, in the same transaction (or the same
        statement) as the state change; that statement must also run
        ``pg_notify(notify_channel(table), '')`` so that the relay wakes up.

        With crypto-shredding, ``data_keys`` (from :meth:`data_keys`) must hold the
        event's subject's key when it has personal fields."""
        if self._sealed(event) and data_keys is None:
            raise ValueError(f"{event.event_type}: sealing needs the subject's data key")
        event_id, headers, value = self._encode(
            event,
            subject=subject or event.aggregate_id(),
            extra=current_traceparent(),
            keys=data_keys or {},
        )
        return {
            "event_id": event_id,
            "topic": event.topic.name,
            "key": event.aggregate_id(),
            "event_type": event.event_type,
            "headers": headers,
            "value": value,
        }

    async def add(self, session: AsyncSession, event: Event, *, subject: str | None = None) -> UUID:
        """Stage ``event``; it is published only if the caller's transaction commits."""
        keys = await self.data_keys(session, [event])
        row = self.row(event, subject=subject, data_keys=keys)
        # The notification reaches the relay's LISTEN only when this transaction commits.
        await session.execute(self._add_one, {f"p_{c}": row[c] for c in _WRITTEN})
        event_id: UUID = row["event_id"]
        return event_id

    async def add_many(self, session: AsyncSession, events: list[Event]) -> list[UUID]:
        """Stage several events with one insert and one notification (bulk producers)."""
        if not events:
            return []
        if len(events) == 1:
            return [await self.add(session, events[0])]  # one statement instead of two
        extra = current_traceparent()
        keys = await self.data_keys(session, events)
        rows: list[dict[str, Any]] = []
        ids: list[UUID] = []
        for event in events:
            event_id, headers, value = self._encode(
                event, subject=event.aggregate_id(), extra=extra, keys=keys
            )
            rows.append(
                {
                    "event_id": event_id,
                    "topic": event.topic.name,
                    "key": event.aggregate_id(),
                    "event_type": event.event_type,
                    "headers": headers,
                    "value": value,
                }
            )
            ids.append(event_id)
        await session.execute(self._insert, rows)
        await session.execute(self._notify)
        return ids

    async def copy_many(self, session: AsyncSession, events: Sequence[Event]) -> list[UUID]:
        """:meth:`add_many` for large batches (bulk imports): rows with the same columns,
        written with PostgreSQL COPY on the session's own connection, in its transaction,
        and one notification. Each event's subject is its aggregate id, as with ``add_many``.

        The headers are :func:`encode`'s (the events of one call share their ``ce_time``);
        the value is the same JSON data, serialised by pydantic (compact; non-ASCII
        characters as UTF-8 rather than ``\\u`` escapes).
        """
        if not events:
            return []
        extra = current_traceparent()
        now = datetime.now(UTC)
        keys = await self.data_keys(session, events)
        headers: dict[tuple[str, int], _HeaderText] = {}
        records: list[tuple[Any, ...]] = []
        ids: list[UUID] = []
        for event in events:
            key = event.aggregate_id()
            kind = (event.event_type, event.event_version)
            texts = headers.get(kind)
            if texts is None:
                texts = headers[kind] = _HeaderText(
                    *kind, source=self._source, time=now, extra=extra
                )
            event_id = new_event_id()
            if self._sealed(event):
                person = subject_of(type(event), event.__dict__)
                sealed = seal_event(
                    event,
                    event_id=str(event_id),
                    data_key=keys.get(person) if person is not None else None,
                )
                value = json.dumps(sealed, separators=(",", ":"), ensure_ascii=False).encode()
            else:
                value = event.model_dump_json().encode()
            records.append(
                (
                    event_id,
                    event.topic.name,
                    key,
                    event.event_type,
                    texts.text(str(event_id), key),
                    value,
                )
            )
            ids.append(event_id)
        await self._copy(session, records)
        return ids

    async def copy_encoded(
        self, session: AsyncSession, contract: type[Event], events: Sequence[tuple[str, bytes]]
    ) -> list[UUID]:
        """:meth:`copy_many` for events of one contract already serialised, as ``(key,
        value)`` pairs: the key is the event's aggregate id, the value its JSON as
        ``model_dump_json`` writes it. For bulk producers that build the JSON without a
        model per event (the registry's import).

        The caller answers for the values: made by the contract's model, or checked
        against it (e.g. one ``TypeAdapter(list[contract])`` validation per batch) and
        proven by a test to be the model's JSON; nothing here parses them again, except
        to seal their personal fields (crypto-shredding): the contract's subject must then
        be its key field (the key is the subject's id).
        """
        if not events:
            return []
        sealing = self._keys is not None and bool(contract.personal_fields())
        keys: Mapping[UUID, bytes | None] = {}
        if sealing:
            if contract.subject_field != contract.key_field:
                raise ValueError(f"{contract.event_type}: copy_encoded seals by key = subject")
            assert self._keys is not None
            keys = await self._keys.data_keys({UUID(key) for key, _ in events}, session)
        texts = _HeaderText(
            contract.event_type,
            contract.event_version,
            source=self._source,
            time=datetime.now(UTC),
            extra=current_traceparent(),
        )
        topic, event_type = contract.topic.name, contract.event_type
        records: list[tuple[Any, ...]] = []
        ids: list[UUID] = []
        for key, value in events:
            event_id = new_event_id()
            if sealing:
                value = seal_json(
                    value, contract, event_id=str(event_id), data_key=keys.get(UUID(key))
                )
            records.append(
                (event_id, topic, key, event_type, texts.text(str(event_id), key), value)
            )
            ids.append(event_id)
        await self._copy(session, records)
        return ids

    async def _copy(self, session: AsyncSession, records: Sequence[tuple[Any, ...]]) -> None:
        # The notification first: it also makes SQLAlchemy's adapter send its BEGIN, so
        # the COPY below is part of the session's transaction (the relay hears it at commit).
        await session.execute(self._notify)
        connection = await session.connection()
        driver: Any = (await connection.get_raw_connection()).driver_connection
        await driver.copy_records_to_table(
            self._table.name,
            columns=list(_WRITTEN),
            records=records,
            schema_name=self._table.schema,
        )


_ID_MARK, _SUBJECT_MARK = json.dumps("@@ce_id@@"), json.dumps("@@ce_subject@@")


class _HeaderText:
    """The headers column (JSON text) of many events of one type in one call.

    They are :func:`encode`'s headers, the same for every event but its id and subject
    (its aggregate id, as ``add_many`` gives it): the JSON text is made once and each
    event's id and subject spliced in, JSON-quoted as ``json.dumps`` quotes them (a
    ``json.dumps`` per event was about 5% of a bulk import's writing). JSON text: the
    JSONB codec SQLAlchemy's asyncpg dialect installs takes text; JSONB does not keep
    the text's key order anyway.
    """

    def __init__(
        self,
        event_type: str,
        version: int,
        *,
        source: str,
        time: datetime,
        extra: Mapping[str, str] | None,
    ) -> None:
        self._fixed = attributes(
            event_type,
            version,
            source=source,
            event_id=json.loads(_ID_MARK),
            time=time,
            subject=json.loads(_SUBJECT_MARK),
            extra_headers=extra,
        )
        self._parts = split_around(json.dumps(self._fixed), _ID_MARK, _SUBJECT_MARK)

    def text(self, event_id: str, subject: str) -> str:
        if self._parts is None or not subject:
            headers = {**self._fixed, "ce_id": event_id, "ce_subject": subject}
            if not subject:
                del headers["ce_subject"]
            return json.dumps(headers)
        head, middle, tail = self._parts
        return head + _quoted(event_id) + middle + _quoted(subject) + tail


@dataclass(frozen=True)
class OutboxBacklog:
    unpublished: int
    oldest_age_seconds: float


async def outbox_backlog(connection: AsyncConnection, table: Table) -> OutboxBacklog:
    row = (
        await connection.execute(
            select(func.count(), func.min(table.c.created_at)).where(table.c.published_at.is_(None))
        )
    ).one()
    oldest: datetime | None = row[1]
    age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
    return OutboxBacklog(unpublished=int(row[0]), oldest_age_seconds=max(age, 0.0))


def publish_backoff(max_backoff: float) -> wait_base:
    """The relay's wait between failed publish passes: 0.4 s, then doubling, plus up to
    1 s of jitter (so that the relays of several services do not all come back to a
    returning broker at the same instant), never more than ``max_backoff``."""
    return wait_exponential_jitter(multiplier=0.4, max=max_backoff, jitter=1.0)


class OutboxRelay:
    """Publishes committed outbox rows to Kafka, then marks them published.

    At-least-once: a crash between the broker's acknowledgement and the update
    publishes the row again; consumers drop the copy through their inbox.
    """

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        table: Table,
        bootstrap_servers: Kafka,
        client_id: str,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        max_backoff: float = 30.0,
        keep_published_for: timedelta = timedelta(days=7),
        topic_prefix: str = "",
    ) -> None:
        self._topic_prefix = topic_prefix
        self._engine = engine
        self._table = table
        self._bootstrap = bootstrap_servers
        self._client_id = client_id
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._keep_published_for = keep_published_for
        self._wakeup = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._lock_key = zlib.crc32(f"outbox-relay:{table.name}".encode())
        self._last_gauge = 0.0
        self.published_total = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set. Waits as a standby while another relay leads."""
        while not stop.is_set():
            try:
                await self._lead(stop)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox_relay_connection_lost")
                await _sleep_unless(stop, self._poll_interval)
        await self._close_producer()

    async def _lead(self, stop: asyncio.Event) -> None:
        async with self._engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            while not await driver.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_key):
                log.info("outbox_relay_standby", table=self._table.name)
                if await _sleep_unless(stop, 5.0):
                    return
            # This connection (the leader's) also reads the rows and marks them, each
            # statement on its own (autocommit): two round trips per batch instead of a
            # BEGIN/COMMIT pair around each. Marks are not waited for on disk: losing
            # one in a database crash only publishes those rows again, which consumers
            # drop through their inbox (at-least-once, as after a relay crash).
            await driver.execute("SET synchronous_commit TO off")
            channel = notify_channel(self._table)
            await driver.add_listener(channel, self._on_notify)
            log.info("outbox_relay_leading", table=self._table.name)
            try:
                await self._publish_loop(stop, _LeaderConnection(driver, self._table.name))
            finally:
                with contextlib.suppress(Exception):
                    await driver.remove_listener(channel, self._on_notify)
                    await driver.execute("SELECT pg_advisory_unlock($1)", self._lock_key)

    def _on_notify(self, *_args: object) -> None:
        self._wakeup.set()

    async def _publish_loop(self, stop: asyncio.Event, db: _LeaderConnection) -> None:
        # While the broker is away, a pass is retried (publish_backoff) until it goes
        # through or ``stop`` is set; a stop also ends the wait at once. A lost leader
        # connection is not retried here: run() reconnects (and leads again if the lock
        # is still free).
        async def failed(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            retry_in = state.next_action.sleep if state.next_action else None
            described = describe_error(error) if error is not None else None
            log.warning("outbox_publish_failed", error=described, retry_in=retry_in)
            await self._close_producer()

        async def pause(seconds: float) -> None:
            await _sleep_unless(stop, seconds)

        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda error: isinstance(error, Exception) and not db.closed),
            wait=publish_backoff(self._max_backoff),
            stop=lambda _state: stop.is_set(),
            sleep=pause,
            before_sleep=failed,
            reraise=True,
        )
        last_cleanup = datetime.min.replace(tzinfo=UTC)
        self._last_gauge = 0.0
        while not stop.is_set():
            try:
                await retrying(self._publish_pass, db, stop)
            except Exception:
                if db.closed or not stop.is_set():
                    raise
                return  # stopped while the broker was away
            if datetime.now(UTC) - last_cleanup > timedelta(minutes=10):
                await self._delete_old_published()
                last_cleanup = datetime.now(UTC)
            waiter = asyncio.ensure_future(self._wakeup.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait(
                {waiter, stopper}, timeout=self._poll_interval, return_when="FIRST_COMPLETED"
            )
            waiter.cancel()
            stopper.cancel()

    async def _publish_pass(self, db: _LeaderConnection, stop: asyncio.Event) -> None:
        """One attempt: refresh the backlog gauges (at most every 5 s, so they move while
        the broker is away too), then publish what is committed."""
        if stop.is_set():
            return  # stopped while waiting for this attempt
        self._wakeup.clear()
        if time.monotonic() - self._last_gauge > 5:
            await self._update_backlog_gauges()
            self._last_gauge = time.monotonic()
        await self._publish_available(db, stop)

    async def _producer_started(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = idempotent_producer(self._bootstrap, client_id=self._client_id)
            await producer.start()
            self._producer = producer
        return self._producer

    async def _close_producer(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            with contextlib.suppress(Exception):
                await producer.stop()

    async def _publish_available(self, db: _LeaderConnection, stop: asyncio.Event) -> int:
        """Publish committed rows not yet published, batch after batch, until a batch
        comes back short (or ``stop`` is set); returns how many were published.

        Two batches overlap: batch n+1 is read (leaving out the rows of batch n, sent
        but not yet marked) and handed to the producer while the broker acknowledges
        batch n. A batch is marked published only once every one of its records is
        acknowledged. If that fails, nothing of it (nor of the batch after it) is
        marked: those rows go out again on the next pass (at-least-once).
        """
        total = 0
        in_flight: _Batch | None = None
        try:
            while True:
                rows = await db.unpublished(self._batch_size, in_flight.ids if in_flight else [])
                batch = await self._send_rows(db, rows) if rows else None
                if in_flight is not None:
                    total += await self._settle(db, in_flight)
                in_flight = batch
                if batch is None:
                    return total
                if len(rows) < self._batch_size or stop.is_set():
                    in_flight = None
                    return total + await self._settle(db, batch)
        except BaseException:
            if in_flight is not None:
                in_flight.abandon()
            raise

    async def _send_rows(self, db: _LeaderConnection, rows: Sequence[_Row]) -> _Batch:
        """Hand every row to the producer; the batch holds their acknowledgements."""
        prefix = self._topic_prefix
        batch = _Batch([row.id for row in rows], [])
        try:
            # Inside: a producer that cannot start (broker unreachable) is this batch's
            # failed attempt too, counted on its rows and in the failure metric.
            producer = await self._producer_started()
            if spans_recorded():
                for row in rows:
                    batch.deliveries.append(
                        await self._send_traced(
                            producer, prefix + row.topic, row.key, row.headers, row.value
                        )
                    )
            else:
                # No span would be kept: the record carries the trace context stored
                # with the row (the request that wrote it), so the consumer's span
                # still continues that trace.
                for row in rows:
                    batch.deliveries.append(
                        await producer.send(
                            prefix + row.topic,
                            value=row.value,
                            key=row.key.encode(),
                            headers=headers_to_kafka(row.headers),
                        )
                    )
        except BaseException as error:
            batch.abandon()
            if isinstance(error, Exception):
                await self._record_failure(db, batch.ids, error)
            raise
        return batch

    async def _settle(self, db: _LeaderConnection, batch: _Batch) -> int:
        """Wait for the batch's acknowledgements, then mark its rows published."""
        results = await asyncio.gather(*batch.deliveries, return_exceptions=True)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            if isinstance(failure, Exception):
                await self._record_failure(db, batch.ids, failure)
            raise failure
        await db.mark_published(batch.ids)
        self.published_total += len(batch.ids)
        OUTBOX_PUBLISHED.labels(self._table.name).inc(len(batch.ids))
        return len(batch.ids)

    async def _record_failure(
        self, db: _LeaderConnection, ids: Sequence[int], error: Exception
    ) -> None:
        OUTBOX_PUBLISH_FAILURES.labels(self._table.name).inc()
        with contextlib.suppress(Exception):  # the database may be what failed
            await db.mark_failed(ids, describe_error(error)[:2000])

    async def _send_traced(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        key: str,
        headers: Mapping[str, str],
        value: bytes,
    ) -> asyncio.Future[Any]:
        # The publish span continues the trace of the request that wrote the row.
        with _tracer.start_as_current_span(
            f"{topic} publish",
            context=context_from_headers(headers),
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": topic,
                "messaging.message.id": headers.get("ce_id", ""),
            },
        ):
            out_headers = {**headers, **current_traceparent()}
            future: asyncio.Future[Any] = await producer.send(
                topic, value=value, key=key.encode(), headers=headers_to_kafka(out_headers)
            )
            return future

    async def _update_backlog_gauges(self) -> None:
        with contextlib.suppress(Exception):
            async with self._engine.connect() as conn:
                backlog = await outbox_backlog(conn, self._table)
            OUTBOX_BACKLOG.labels(self._table.name).set(backlog.unpublished)
            OUTBOX_OLDEST_AGE.labels(self._table.name).set(backlog.oldest_age_seconds)

    async def _delete_old_published(self) -> None:
        cutoff = datetime.now(UTC) - self._keep_published_for
        async with self._engine.begin() as conn:
            await conn.execute(delete(self._table).where(self._table.c.published_at < cutoff))


@dataclass
class _Batch:
    """Rows handed to the producer, with the broker's acknowledgements to come."""

    ids: list[int]
    deliveries: list[asyncio.Future[Any]]

    def abandon(self) -> None:
        """Give up waiting: the rows stay unpublished (their errors are retrieved here,
        so that asyncio does not report them as never retrieved)."""
        if self.deliveries:
            asyncio.gather(*self.deliveries, return_exceptions=True)


@dataclass(frozen=True)
class _Row:
    id: int
    topic: str
    key: str
    headers: dict[str, str]
    value: bytes


class _LeaderConnection:
    """The leading relay's own connection: plain statements, no pool, no transactions."""

    def __init__(self, driver: Any, table_name: str) -> None:
        self._driver = driver
        # The table's name comes from the service's own metadata, never from input;
        # quoted all the same.
        table = '"' + table_name.replace('"', '""') + '"'
        columns = "id, topic, key, headers::text, value"
        unpublished = f"SELECT {columns} FROM {table} WHERE published_at IS NULL"  # noqa: S608
        self._select = f"{unpublished} ORDER BY id LIMIT $1"
        self._select_excluding = f"{unpublished} AND id <> ALL($2::bigint[]) ORDER BY id LIMIT $1"
        update = f"UPDATE {table} SET"
        self._mark = f"{update} published_at = now() WHERE id = ANY($1::bigint[])"
        self._fail = (
            f"{update} attempts = attempts + 1, last_error = $2 WHERE id = ANY($1::bigint[])"
        )

    @property
    def closed(self) -> bool:
        return bool(self._driver.is_closed())

    async def unpublished(self, limit: int, exclude: Sequence[int]) -> list[_Row]:
        """Committed rows not yet published, in id order (``exclude``: rows in flight)."""
        if exclude:
            records = await self._driver.fetch(self._select_excluding, limit, list(exclude))
        else:
            records = await self._driver.fetch(self._select, limit)
        return [_Row(r[0], r[1], r[2], json.loads(r[3]), r[4]) for r in records]

    async def mark_published(self, ids: Sequence[int]) -> None:
        await self._driver.execute(self._mark, list(ids))

    async def mark_failed(self, ids: Sequence[int], error: str) -> None:
        await self._driver.execute(self._fail, list(ids), error)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``; True if ``stop`` was set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()
