"""The experts read model, built from registry events on the real broker: the worker's
consumer (consent filter, updates, withdrawal, merge, erasure, stale replays) and the
rebuild command (a fresh table from the topic's beginning, swapped in)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from aiokafka import AIOKafkaProducer
from matching_testing.experts import new_member_id, profile, publish, updated
from sqlalchemy import func, literal, select, text

from diaspora_devstack.testing import asyncpg_url, wait_until
from diaspora_events.cloudevents import encode, headers_to_kafka
from diaspora_events.contracts.registry import (
    MemberErasedV1,
    MemberMergedV1,
    MemberRegisteredV1,
    MemberUpdatedV1,
)
from diaspora_events.kafka import ensure_topics
from diaspora_events.shredding import KeyResolver, new_data_key, seal_event
from diaspora_events.topics import REGISTRY_MEMBERS
from diaspora_service.db import make_engine
from matching.entrypoints.worker import run
from matching.experts.consumer import CONSUMER_NAME
from matching.experts.projection import search_document
from matching.experts.rebuild import rebuild
from matching.experts.tables import expert_sources, experts
from matching.resources import Matching
from matching.tables import inbox

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def running_worker(service: Matching) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(run(service, stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def expert(service: Matching, member_id: UUID) -> dict[str, object] | None:
    async with service.sessions() as session:
        row = (
            (await session.execute(select(experts).where(experts.c.member_id == member_id)))
            .mappings()
            .first()
        )
    return dict(row) if row else None


async def handled(service: Matching) -> int:
    async with service.sessions() as session:
        count = await session.execute(
            select(func.count()).select_from(inbox).where(inbox.c.consumer == CONSUMER_NAME)
        )
    return int(count.scalar_one())


def erased(member_id: UUID) -> MemberErasedV1:
    return MemberErasedV1(member_id=member_id, erased_at=datetime.now(UTC))


async def test_only_consenting_members_become_experts_and_changes_follow(
    matching: Matching, kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = topic_prefix + REGISTRY_MEMBERS.name
    consenting, refusing, early, withdrawing = (new_member_id() for _ in range(4))
    merged_away, survivor, to_erase = (new_member_id() for _ in range(3))
    doctor = profile(
        given_name="Kossi",
        languages=["fr", "en"],
        occupations=[("2211", "Médecin généraliste")],
        skills=["chirurgie", ("http://data.europa.eu/esco/skill/x", "soins d'urgence")],
        education=[(7, "médecine")],
        experience=[("Médecin urgentiste", "2211", 2012, None)],
    )
    async with running_worker(matching):
        await publish(
            kafka_bootstrap,
            topic,
            updated(consenting, doctor),
            updated(refusing, profile(consent=False)),
            updated(withdrawing, profile(given_name="Afi")),
            updated(merged_away, profile(given_name="Yao")),
            updated(survivor, profile(given_name="Yao", family_name="Amouzou")),
            updated(to_erase, profile(given_name="Edem")),
            MemberRegisteredV1(
                member_id=early,
                given_name="Early",
                family_name="Bird",
                date_of_birth=datetime(1980, 1, 1).date(),
                email="early@example.org",
                phone="+33600000000",
                country_of_residence="FR",
                registered_at=datetime.now(UTC),
            ),
        )
        await wait_until(lambda: _count_at_least(matching, 7), timeout=60, message="7 events")
        row = await expert(matching, consenting)
        assert row is not None
        assert row["languages"] == ["en", "fr"]
        assert row["isco_units"] == ["2211"]
        assert row["isco_minors"] == ["221"]
        assert row["isco_submajors"] == ["22"]
        assert row["max_isced_level"] == 7
        assert row["skill_uris"] == ["http://data.europa.eu/esco/skill/x"]
        assert row["experience_years"]["2211"] >= 10
        assert "chirurgie" in str(row["search_text"])
        for absent in (refusing, early):
            assert await expert(matching, absent) is None
        assert await expert(matching, withdrawing) is not None

        # Withdrawal, a change of profile, a merge and an erasure, within seconds.
        await publish(
            kafka_bootstrap,
            topic,
            updated(withdrawing, profile(given_name="Afi", consent=False)),
            updated(consenting, profile(given_name="Kossi", occupations=["2310"])),
            MemberMergedV1(
                member_id=merged_away,
                survivor_id=survivor,
                merged_at=datetime.now(UTC),
                case_id=new_member_id(),
            ),
            erased(to_erase),
        )
        await wait_until(lambda: _count_at_least(matching, 11), timeout=60, message="4 more")
        assert await expert(matching, withdrawing) is None
        changed = await expert(matching, consenting)
        assert changed is not None
        assert changed["isco_units"] == ["2310"]
        assert await expert(matching, merged_away) is None
        assert await expert(matching, survivor) is not None
        assert await expert(matching, to_erase) is None

        # A late or replayed snapshot never brings back an erased person, nor undoes a
        # newer withdrawal.
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
        await publish(
            kafka_bootstrap,
            topic,
            (updated(to_erase, profile(given_name="Edem")), datetime.now(UTC)),
            (updated(withdrawing, profile(given_name="Afi")), an_hour_ago),
        )
        await wait_until(lambda: _count_at_least(matching, 13), timeout=60, message="2 more")
        assert await expert(matching, to_erase) is None
        assert await expert(matching, withdrawing) is None
    async with matching.sessions() as session:
        states = dict(
            (
                await session.execute(select(expert_sources.c.member_id, expert_sources.c.state))
            ).all()
        )
    assert states[to_erase] == "erased"
    assert states[merged_away] == "merged"
    assert states[withdrawing] == "not_consenting"


async def _count_at_least(service: Matching, n: int) -> bool:
    return await handled(service) >= n


async def test_rebuild_replays_the_topic_into_a_fresh_table_and_swaps_it_in(
    matching: Matching, matching_database: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = topic_prefix + REGISTRY_MEMBERS.name
    kept, withdrawn, gone, late = (new_member_id() for _ in range(4))
    await publish(
        kafka_bootstrap,
        topic,
        updated(kept, profile(given_name="Ama", occupations=["2320"], skills=["géologie"])),
        updated(withdrawn, profile(given_name="Komi")),
        updated(withdrawn, profile(given_name="Komi", consent=False)),
        updated(gone, profile(given_name="Dzifa")),
        erased(gone),
    )
    # The live table drifted (a row nobody's events support): the rebuild drops it.
    drifted = new_member_id()
    async with matching.sessions() as session, session.begin():
        await session.execute(
            experts.insert().values(
                member_id=drifted,
                given_name="Ghost",
                family_name="Row",
                preferred_language="fr",
                country_of_residence="FR",
                embassy_id="fr-paris",
                source_time=datetime.now(UTC),
            )
        )

    async def meanwhile() -> None:
        # Published after the bulk load: the swap's catch-up must apply it.
        await publish(kafka_bootstrap, topic, updated(late, profile(given_name="Sena")))

    # The rebuild creates, drops and renames tables: it runs as the owner
    # (matching-rebuild-experts uses MATCHING_MIGRATION_DATABASE_URL); the service, as its
    # runtime role, reads the swapped-in tables below.
    owner = make_engine(asyncpg_url(matching_database))
    try:
        report = await rebuild(
            owner,
            bootstrap_servers=kafka_bootstrap,
            topic_prefix=topic_prefix,
            before_swap=meanwhile,
        )
    finally:
        await owner.dispose()
    assert report.events_applied == 5
    assert report.caught_up == 1
    assert report.experts == 2
    assert await expert(matching, kept) is not None
    assert await expert(matching, late) is not None
    for absent in (withdrawn, gone, drifted):
        assert await expert(matching, absent) is None
    rebuilt = await expert(matching, kept)
    assert rebuilt is not None
    async with matching.sessions() as session:
        # The rebuild computes documents as it loads: the same as the live projection's.
        document = search_document(literal(rebuilt["search_text"]))
        assert rebuilt["search"] == (await session.execute(select(document))).scalar_one()
        assert rebuilt["search"]
        indexes = set(
            (
                await session.execute(
                    text("SELECT indexname FROM pg_indexes WHERE tablename = 'experts'")
                )
            ).scalars()
        )
        tables = set(
            (
                await session.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            ).scalars()
        )
    # The same indexes as the migrations give, under the same names (per need type too).
    assert indexes == {"experts_pkey"} | {str(index.name) for index in experts.indexes}
    assert "experts_search_technical_assistance_idx" in indexes
    assert not any(t.endswith("_rebuild") for t in tables)

    # The live consumer carries on over the swapped table: an erasure applies.
    async with running_worker(matching):
        await publish(kafka_bootstrap, topic, erased(kept))
        await wait_until(
            lambda: _absent(matching, kept), timeout=60, message="erasure after the rebuild"
        )


async def _publish_sealed(
    bootstrap: str, topic: str, keys: dict[UUID, bytes | None], *events: MemberUpdatedV1
) -> None:
    """Publish as the registry's relay does with crypto-shredding: personal fields sealed
    with the member's key (a key since destroyed: sealed with one nobody keeps)."""
    await ensure_topics(bootstrap, [replace(REGISTRY_MEMBERS, name=topic)])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for event in events:
            event_id, headers, _clear = encode(event, source="/tg/diaspora/registry")
            sealed = seal_event(event, event_id=str(event_id), data_key=keys[event.member_id])
            await producer.send_and_wait(
                topic,
                value=json.dumps(sealed).encode(),
                key=event.aggregate_id().encode(),
                headers=headers_to_kafka(headers),
            )
    finally:
        await producer.stop()


async def test_rebuild_opens_sealed_events_with_the_keys_of_each_batch_at_once(
    matching: Matching, matching_database: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = topic_prefix + REGISTRY_MEMBERS.name
    members = [new_member_id() for _ in range(30)]
    gone = new_member_id()
    keys: dict[UUID, bytes | None] = {m: new_data_key() for m in members} | {gone: None}
    asked: list[list[UUID]] = []

    async def key_service(subjects: list[UUID]) -> dict[UUID, bytes | None]:
        asked.append(subjects)
        return {s: keys[s] for s in subjects}

    await _publish_sealed(
        kafka_bootstrap,
        topic,
        keys,
        *(updated(m, profile(given_name=f"Ama{n}")) for n, m in enumerate(members)),
        updated(gone, profile(given_name="Dzifa")),
    )
    owner = make_engine(asyncpg_url(matching_database))
    try:
        report = await rebuild(
            owner,
            bootstrap_servers=kafka_bootstrap,
            topic_prefix=topic_prefix,
            keys=KeyResolver(key_service),
        )
    finally:
        await owner.dispose()
    # Every member's sealed profile opened; the erased person's event yields nothing.
    assert report.experts == len(members)
    assert report.events_applied == len(members)
    for n, member in enumerate(members):
        row = await expert(matching, member)
        assert row is not None
        assert row["given_name"] == f"Ama{n}"
    assert await expert(matching, gone) is None
    # Keys asked for per batch of records, not per record; each person once.
    assert len(asked) < len(members)
    assert sorted(s for batch in asked for s in batch) == sorted([*members, gone])


async def _absent(service: Matching, member_id: UUID) -> bool:
    return await expert(service, member_id) is None
