"""OutboxWriter.copy_many (COPY, bulk producers) against the real PostgreSQL: the rows
add_many writes, in the caller's transaction, with the relay's notification."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import asyncpg
import pytest
from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from uuid_utils.compat import uuid7

from diaspora_devstack.testing import asyncpg_url
from diaspora_events.cloudevents import decode
from diaspora_events.contracts import MemberRegisteredV1
from diaspora_events.outbox import OutboxWriter, notify_channel, outbox_table

pytestmark = pytest.mark.integration

metadata = MetaData()
outbox = outbox_table(metadata)


@pytest.fixture
async def engine(empty_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(asyncpg_url(empty_database))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


def registered(n: int) -> MemberRegisteredV1:
    return MemberRegisteredV1(
        member_id=uuid7(),
        given_name=f"Kɔkú {n}",  # non-ASCII: same data whatever the JSON escaping
        family_name="Agbéko",
        date_of_birth=date(1990, 1, 1),
        email=f"p{n}@example.org",
        phone="+22890000000",
        country_of_residence="FR",
        registered_at="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
    )


async def _rows(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(outbox).order_by(outbox.c.id))).mappings())


async def test_copy_many_writes_the_rows_add_many_writes_in_the_callers_transaction(
    engine: AsyncEngine, empty_database: str
) -> None:
    writer = OutboxWriter(outbox, source="/test")
    events = [registered(n) for n in range(3)]

    # Rolled back with the caller's transaction: nothing stays.
    async with AsyncSession(engine) as session, session.begin():
        await writer.copy_many(session, events)
        await session.rollback()
    assert await _rows(engine) == []

    # Committed: the relay's LISTEN hears it once the transaction commits.
    listener = await asyncpg.connect(empty_database)
    heard = asyncio.Event()
    await listener.add_listener(notify_channel(outbox), lambda *_: heard.set())
    try:
        async with AsyncSession(engine) as session, session.begin():
            added = await writer.add_many(session, events)
            copied = await writer.copy_many(session, events)
            assert not heard.is_set()
        await asyncio.wait_for(heard.wait(), timeout=10)
    finally:
        await listener.close()

    rows = await _rows(engine)
    assert [r["event_id"] for r in rows] == added + copied  # in order, after add_many's
    for by_insert, by_copy in zip(rows[:3], rows[3:], strict=True):
        for column in ("topic", "key", "event_type"):
            assert by_copy[column] == by_insert[column]
        assert by_copy["headers"]["ce_id"] == str(by_copy["event_id"])
        assert by_copy["headers"]["ce_subject"] == by_copy["key"]
        same = {k: v for k, v in by_insert["headers"].items() if k not in ("ce_id", "ce_time")}
        assert {k: v for k, v in by_copy["headers"].items() if k not in ("ce_id", "ce_time")} == (
            same
        )
        one = decode(by_insert["headers"], by_insert["value"])
        other = decode(by_copy["headers"], by_copy["value"])
        assert other.data == one.data
        assert other.to_event() == one.to_event()
        assert by_copy["published_at"] is None
        assert by_copy["attempts"] == 0


async def test_row_is_what_add_stages(engine: AsyncEngine) -> None:
    writer = OutboxWriter(outbox, source="/test")
    event = registered(1)
    row = writer.row(event, subject="someone")
    assert row["key"] == str(event.member_id)
    assert row["headers"]["ce_subject"] == "someone"
    assert decode(row["headers"], row["value"]).to_event() == event
    async with AsyncSession(engine) as session, session.begin():
        event_id = await writer.add(session, event, subject="someone")
    [stored] = await _rows(engine)
    assert stored["event_id"] == event_id
    assert stored["headers"]["ce_subject"] == "someone"
    assert decode(stored["headers"], stored["value"]).to_event() == event


async def test_copy_encoded_writes_what_copy_many_writes(engine: AsyncEngine) -> None:
    writer = OutboxWriter(outbox, source="/test")
    events = [registered(n) for n in range(3)]
    async with AsyncSession(engine) as session, session.begin():
        by_model = await writer.copy_many(session, events)
        encoded = await writer.copy_encoded(
            session,
            MemberRegisteredV1,
            [(e.aggregate_id(), e.model_dump_json().encode()) for e in events],
        )
    rows = await _rows(engine)
    assert [r["event_id"] for r in rows] == by_model + encoded
    for one, other in zip(rows[:3], rows[3:], strict=True):
        for column in ("topic", "key", "event_type", "value"):
            assert other[column] == one[column]
        assert other["headers"]["ce_id"] == str(other["event_id"])
        ignored = ("ce_id", "ce_time")
        assert {k: v for k, v in other["headers"].items() if k not in ignored} == {
            k: v for k, v in one["headers"].items() if k not in ignored
        }
        assert (
            decode(other["headers"], other["value"]).to_event()
            == decode(one["headers"], one["value"]).to_event()
        )
