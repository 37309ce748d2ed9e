"""Rebuild the experts read model from ``registry.members``, without stopping the service.

1. Fresh tables ``experts_rebuild`` and ``expert_sources_rebuild`` (same columns as the
   live ones, no secondary index yet).
2. Every partition of the topic is read from its beginning up to the end offsets taken
   at the start (the topic is compacted: the latest event per member is there), with
   the same projection as the live consumer (``expert_row``), in batches.
3. Full-text documents and indexes are built once, over the whole table.
4. Swap, in one transaction: both live tables are locked (the live consumer waits), the
   events published meanwhile are applied to the new tables, which then take the live
   tables' names. The live consumer carries on from its own offsets; what it applies
   again is ignored or idempotent (``expert_sources`` keeps the time of each member's
   latest event).

The ranking keeps answering from the old table until the swap commits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import bindparam, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from diaspora_events.cloudevents import Envelope, MalformedEvent, decode, headers_from_kafka
from diaspora_events.contracts.base import UnknownEventType
from diaspora_events.kafka import Kafka, client_options
from diaspora_events.shredding import DataKeySource, open_envelopes
from diaspora_events.topics import REGISTRY_MEMBERS
from diaspora_service.db_roles import copy_grants
from matching.experts.projection import (
    MEMBER_EVENTS,
    MISSIONS_CONSENT,
    MemberEvent,
    Tables,
    apply_event,
    copy_named,
    expert_row,
    search_document,
)
from matching.experts.tables import expert_sources, experts

log = structlog.get_logger(__name__)

SUFFIX = "_rebuild"
NEXT = "_next"
HANDLED = {(c.event_type, c.event_version) for c in MEMBER_EVENTS}
Decoded = tuple[MemberEvent, datetime]


@dataclass
class RebuildReport:
    events_read: int = 0
    events_applied: int = 0
    skipped: int = 0
    caught_up: int = 0
    experts: int = 0
    seconds: float = 0.0
    positions: dict[int, int] = field(default_factory=dict)


# The parameter the document is computed from (a column's own name is reserved for it).
DOCUMENT_TEXT = "document_text"

REBUILD = Tables(
    experts=copy_named(experts, experts.name + SUFFIX),
    sources=copy_named(expert_sources, expert_sources.name + SUFFIX),
)


async def _prepare(conn: AsyncConnection) -> None:
    for live, fresh in ((experts, REBUILD.experts), (expert_sources, REBUILD.sources)):
        await conn.execute(text(f"DROP TABLE IF EXISTS {fresh.name}"))
        await conn.execute(text(f"CREATE TABLE {fresh.name} (LIKE {live.name} INCLUDING DEFAULTS)"))
        await conn.execute(
            text(
                f"ALTER TABLE {fresh.name} ADD CONSTRAINT {fresh.name}_pkey PRIMARY KEY (member_id)"
            )
        )


async def _decode(records: list[Any], keys: DataKeySource | None) -> list[Decoded]:
    """The member events of ``records`` (their personal fields opened with the keys of
    the whole batch, asked for at once); the others (malformed, other types, about an
    erased person) are left out."""
    envelopes: list[Envelope] = []
    for record in records:
        try:
            envelope = decode(headers_from_kafka(record.headers), record.value)
        except MalformedEvent:
            continue
        if (envelope.type, envelope.version) in HANDLED:
            envelopes.append(envelope)
    decoded: list[Decoded] = []
    for opened in await open_envelopes(envelopes, keys):
        if opened is None:
            continue
        try:
            event = opened.to_event()
        except (UnknownEventType, ValueError):
            continue
        decoded.append((event, opened.time))  # type: ignore[arg-type]
    return decoded


async def _load_batch(conn: AsyncConnection, events: list[tuple[MemberEvent, datetime]]) -> None:
    """Bulk-apply a batch read in partition order: each member's latest event decides
    (the topic is keyed by member), erasure and merge are final."""
    latest: dict[UUID, tuple[MemberEvent, datetime]] = {}
    for event, at in events:
        latest[event.member_id] = (event, at)
    rows: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []
    gone: list[UUID] = []
    for member_id, (event, at) in latest.items():
        profile = getattr(event, "profile", None)
        if event.event_type == "registry.member.erased":
            state = "erased"
        elif event.event_type == "registry.member.merged":
            state = "merged"
        elif profile is not None and profile.consents_to(MISSIONS_CONSENT):
            state = "candidate"
            rows.append(expert_row(member_id, profile, at))
        else:
            state = "not_consenting"
        if state != "candidate":
            gone.append(member_id)
        states.append({"member_id": member_id, "source_time": at, "state": state})
    sources = REBUILD.sources
    statement = insert(sources)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["member_id"],
            set_={"source_time": statement.excluded.source_time, "state": statement.excluded.state},
            # Plain comparisons: an expanding IN cannot go into an executemany.
            where=(sources.c.state != "erased") & (sources.c.state != "merged"),
        ),
        states,
    )
    if gone:
        await conn.execute(delete(REBUILD.experts).where(REBUILD.experts.c.member_id.in_(gone)))
    if rows:
        # Erased or merged members stay out even if a stale snapshot follows.
        final = await conn.execute(
            select(sources.c.member_id).where(
                sources.c.member_id.in_([r["member_id"] for r in rows]),
                sources.c.state.in_(("erased", "merged")),
            )
        )
        blocked = {r[0] for r in final}
        rows = [r for r in rows if r["member_id"] not in blocked]
    if rows:
        # The document is computed as each row goes in: a later UPDATE of every row
        # would write the table twice (and leave it twice its size).
        upsert = insert(REBUILD.experts).values(search=search_document(bindparam(DOCUMENT_TEXT)))
        columns = [k for k in rows[0] if k != "member_id"] + ["search"]
        await conn.execute(
            upsert.on_conflict_do_update(
                index_elements=["member_id"],
                set_={k: upsert.excluded[k] for k in columns},
            ),
            [{**r, DOCUMENT_TEXT: r["search_text"]} for r in rows],
        )


async def _index(conn: AsyncConnection) -> None:
    """The live table's indexes, built once over the loaded rows."""
    fresh = REBUILD.experts
    definitions = await conn.execute(
        text(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = current_schema() AND tablename = :table "
            "AND indexname <> :pkey"
        ),
        {"table": experts.name, "pkey": f"{experts.name}_pkey"},
    )
    for name, definition in definitions:
        statement = definition.replace(f"INDEX {name} ON", f"INDEX {name}{NEXT} ON", 1)
        statement = statement.replace(f".{experts.name} USING", f".{fresh.name} USING", 1)
        await conn.execute(text(statement))
    await conn.execute(text(f"ANALYZE {fresh.name}"))
    await conn.execute(text(f"ANALYZE {REBUILD.sources.name}"))


async def _swap(conn: AsyncConnection) -> None:
    index_names = [
        row[0]
        for row in await conn.execute(
            text(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                "AND tablename = :table AND indexname LIKE :pattern"
            ),
            {"table": REBUILD.experts.name, "pattern": f"%{NEXT}"},
        )
    ]
    for live, fresh in ((experts, REBUILD.experts), (expert_sources, REBUILD.sources)):
        # The service's runtime role keeps its rights on the swapped-in table.
        await copy_grants(conn, live.name, fresh.name)
        await conn.execute(text(f"DROP TABLE {live.name}"))
        await conn.execute(text(f"ALTER TABLE {fresh.name} RENAME TO {live.name}"))
        await conn.execute(
            text(f"ALTER TABLE {live.name} RENAME CONSTRAINT {fresh.name}_pkey TO {live.name}_pkey")
        )
    for name in index_names:
        await conn.execute(text(f"ALTER INDEX {name} RENAME TO {name.removesuffix(NEXT)}"))


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The topic's partitions, refreshing the client's metadata with backoff (about five
    seconds in all) while the broker does not know the topic yet."""
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(5),
            wait=wait_exponential(multiplier=0.05, max=1.0),
            retry=retry_if_exception_type(LookupError),
        ):
            with attempt:
                found = consumer.partitions_for_topic(topic)
                if not found:
                    await consumer._client.force_metadata_update()
                    raise LookupError(topic)
    except RetryError:
        raise SystemExit(f"topic {topic!r} not found on the broker") from None
    return [TopicPartition(topic, p) for p in sorted(found)]


async def _read_until(
    consumer: AIOKafkaConsumer,
    ends: dict[TopicPartition, int],
    on_batch: Callable[[list[Any]], Any],
) -> int:
    """Read every partition up to its end offset; returns how many records were read."""
    read = 0
    remaining = {tp for tp, end in ends.items() if await consumer.position(tp) < end}
    while remaining:
        batches = await consumer.getmany(*remaining, timeout_ms=500, max_records=2000)
        records: list[Any] = []
        for tp, items in batches.items():
            records.extend(r for r in items if r.offset < ends[tp])
        if records:
            read += len(records)
            await on_batch(records)
        for tp in list(remaining):
            if await consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)
    return read


async def rebuild(
    engine: AsyncEngine,
    *,
    bootstrap_servers: Kafka,
    topic_prefix: str = "",
    before_swap: Callable[[], Any] | None = None,
    keys: DataKeySource | None = None,
) -> RebuildReport:
    """Replay ``registry.members`` from its beginning into fresh tables and swap them in.

    ``keys``: persons' data keys, to open the sealed personal fields (crypto-shredding;
    without them, sealed events are skipped). The key service down fails the rebuild
    before the swap: the live tables stay as they were.
    ``before_swap`` (tests) runs after the bulk load, before the swap's catch-up.
    """
    started = time.monotonic()
    report = RebuildReport()
    topic = topic_prefix + REGISTRY_MEMBERS.name
    consumer = AIOKafkaConsumer(
        **client_options(bootstrap_servers),
        enable_auto_commit=False,
        isolation_level="read_committed",
        client_id="matching-rebuild-experts",
    )
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        async with engine.begin() as conn:
            await _prepare(conn)

        async def load(records: list[Any]) -> None:
            events = await _decode(records, keys)
            report.skipped += len(records) - len(events)
            report.events_applied += len(events)
            if events:
                async with engine.begin() as conn:
                    await _load_batch(conn, events)

        report.events_read = await _read_until(consumer, ends, load)
        async with engine.begin() as conn:
            await _index(conn)
        log.info("experts_rebuild_loaded", events=report.events_read)
        if before_swap is not None:
            await before_swap()

        async with engine.begin() as conn:
            await conn.execute(
                text(f"LOCK TABLE {experts.name}, {expert_sources.name} IN ACCESS EXCLUSIVE MODE")
            )
            # Everything the live consumer applied so far was published before these ends.
            latest = await consumer.end_offsets(partitions)

            async def catch_up(records: list[Any]) -> None:
                events = await _decode(records, keys)
                report.skipped += len(records) - len(events)
                for event, at in events:
                    report.caught_up += 1
                    await apply_event(conn, event, at, REBUILD)

            report.events_read += await _read_until(consumer, latest, catch_up)
            await _swap(conn)
            report.positions = {tp.partition: offset for tp, offset in latest.items()}
        async with engine.connect() as conn:
            count = await conn.execute(select(func.count()).select_from(experts))
            report.experts = int(count.scalar_one())
    finally:
        await consumer.stop()
    report.seconds = time.monotonic() - started
    return report
