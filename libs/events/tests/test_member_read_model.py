"""The shared member read model and its consumer, against the real PostgreSQL (handlers
called with the records a relay would publish; no broker needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Column, DateTime, MetaData, Table, Text, Uuid, func, select
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from diaspora_devstack.testing import DeadLetters, asyncpg_url, event_record
from diaspora_events.consumer import Outcome, inbox_table
from diaspora_events.contracts import (
    MemberConfirmedV1,
    MemberErasedV1,
    MemberMergedV1,
    MemberRegisteredV1,
    MemberUpdatedV1,
)
from diaspora_events.contracts.base import all_contracts
from diaspora_events.contracts.registry import MemberProfile
from diaspora_events.member_read_model import (
    MemberReadModel,
    build_consumer,
    removed_members_table,
)
from diaspora_events.topics import REGISTRY_MEMBERS

pytestmark = pytest.mark.integration

metadata = MetaData()
inbox = inbox_table(metadata)
people = Table(
    "people",
    metadata,
    Column("member_id", Uuid, primary_key=True),
    Column("given_name", Text, nullable=False),
    Column("source_time", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
removed_people = removed_members_table(metadata, "removed_people")
# What the service's own erase and merge steps did, in order.
steps_log = Table(
    "steps_log",
    metadata,
    Column("step", Text, nullable=False),
    Column("member_id", Uuid, nullable=False),
    Column("survivor_id", Uuid),
)


def row_of(member_id: UUID, profile: MemberProfile, at: datetime) -> dict[str, Any]:
    return {"member_id": member_id, "given_name": profile.given_name, "source_time": at}


def early_row(event: MemberRegisteredV1) -> dict[str, Any]:
    return {
        "member_id": event.member_id,
        "given_name": f"early {event.given_name}",
        "source_time": event.registered_at,
    }


MODEL = MemberReadModel(
    table=people,
    removed=removed_people,
    columns=("member_id", "given_name", "source_time"),
    snapshot_row=row_of,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def profile(given_name: str) -> MemberProfile:
    return MemberProfile(
        given_name=given_name,
        family_name="Agbeko",
        date_of_birth=date(1990, 5, 4),
        email="a@example.org",
        phone="+22890000000",
        country_of_residence="FR",
        embassy_id="fr-paris",
    )


def registered(member_id: UUID, *, with_profile: bool, at: datetime = T0) -> MemberRegisteredV1:
    return MemberRegisteredV1(
        member_id=member_id,
        given_name="Kossi",
        family_name="Agbeko",
        date_of_birth=date(1990, 5, 4),
        email="a@example.org",
        phone="+22890000000",
        country_of_residence="FR",
        registered_at=at,
        profile=profile("Kossi") if with_profile else None,
    )


def updated(member_id: UUID, given_name: str, at: datetime) -> MemberUpdatedV1:
    return MemberUpdatedV1(
        member_id=member_id,
        updated_at=at,
        changed_fields=["given_name"],
        profile=profile(given_name),
    )


@pytest.fixture
async def sessions(empty_database: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine: AsyncEngine = create_async_engine(asyncpg_url(empty_database))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


async def log_erase(session: AsyncSession, member_id: UUID) -> None:
    await session.execute(steps_log.insert().values(step="erase", member_id=member_id))


async def log_merge(session: AsyncSession, member_id: UUID, survivor_id: UUID) -> None:
    await session.execute(
        steps_log.insert().values(step="merge", member_id=member_id, survivor_id=survivor_id)
    )


async def name_of(sessions: async_sessionmaker[AsyncSession], member_id: UUID) -> str | None:
    async with sessions() as session:
        return (
            await session.execute(
                select(people.c.given_name).where(people.c.member_id == member_id)
            )
        ).scalar_one_or_none()


def test_the_consumer_handles_every_member_event_type() -> None:
    consumer = build_consumer(
        MODEL,
        name="reader",
        early_row=early_row,
        sessions=async_sessionmaker(),
        inbox=inbox,
        dead_letters=DeadLetters(),
    )
    published = {c for c in all_contracts() if c.topic == REGISTRY_MEMBERS}
    assert published, "the registry publishes member events"
    assert set(consumer.handled_contracts) == published


def test_a_read_model_needs_the_key_and_the_snapshot_time() -> None:
    with pytest.raises(ValueError, match="source_time"):
        MemberReadModel(
            table=people, removed=removed_people, columns=("member_id",), snapshot_row=row_of
        )


async def test_snapshots_apply_if_newer_and_erasure_and_merge_are_final(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    consumer = build_consumer(
        MODEL,
        name="reader",
        early_row=early_row,
        sessions=sessions,
        inbox=inbox,
        dead_letters=DeadLetters(),
        erase_steps=[log_erase],
        merge_steps=[log_merge],
    )
    early, erased, merged, survivor = uuid4(), uuid4(), uuid4(), uuid4()

    # The early flat form goes through the service's own mapping.
    assert await consumer.handle_record(event_record(registered(early, with_profile=False))) is (
        Outcome.HANDLED
    )
    assert await name_of(sessions, early) == "early Kossi"

    # A newer snapshot replaces the row; an older one, and a redelivery, change nothing.
    record = event_record(updated(erased, "Afi", T0 + timedelta(hours=2)))
    assert await consumer.handle_record(record) is Outcome.HANDLED
    assert await consumer.handle_record(record) is Outcome.DUPLICATE
    old = event_record(registered(erased, with_profile=True, at=T0 + timedelta(hours=1)))
    assert await consumer.handle_record(old) is Outcome.HANDLED
    assert await name_of(sessions, erased) == "Afi"
    confirmed = MemberConfirmedV1(
        member_id=erased, confirmed_at=T0 + timedelta(hours=3), profile=profile("Afiwa")
    )
    assert await consumer.handle_record(event_record(confirmed)) is Outcome.HANDLED
    assert await name_of(sessions, erased) == "Afiwa"

    # Erasure: the service's step, then the row goes and the id is recorded; a late
    # snapshot does not bring the person back.
    erasure = MemberErasedV1(member_id=erased, erased_at=T0 + timedelta(hours=4))
    assert await consumer.handle_record(event_record(erasure)) is Outcome.HANDLED
    late = event_record(updated(erased, "Back", T0 + timedelta(hours=5)))
    assert await consumer.handle_record(late) is Outcome.HANDLED
    assert await name_of(sessions, erased) is None

    # Merge: the service's step with the survivor, then the absorbed row goes.
    assert await consumer.handle_record(event_record(updated(merged, "Yawo", T0))) is (
        Outcome.HANDLED
    )
    merger = MemberMergedV1(
        member_id=merged, survivor_id=survivor, merged_at=T0 + timedelta(hours=1), case_id=uuid4()
    )
    assert await consumer.handle_record(event_record(merger)) is Outcome.HANDLED
    assert await name_of(sessions, merged) is None

    async with sessions() as session:
        removed = (
            await session.execute(
                select(
                    removed_people.c.member_id,
                    removed_people.c.reason,
                    removed_people.c.survivor_id,
                ).order_by(removed_people.c.removed_at)
            )
        ).all()
        steps = (await session.execute(select(steps_log))).all()
    assert {tuple(r) for r in removed} == {
        (erased, "erased", None),
        (merged, "merged", survivor),
    }
    assert [tuple(s) for s in steps] == [("erase", erased, None), ("merge", merged, survivor)]
