"""The experts read model's consumer (fast tier): registry member events become rows of
``experts``, a redelivered event id changes nothing; on a rolled-back database, no Kafka.
(The same consumer on the real broker: test_experts_read_model.py.)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from faststream.kafka import KafkaBroker, TestKafkaBroker
from matching_testing.experts import new_member_id, profile, updated
from sqlalchemy import func, select
from uuid_utils.compat import uuid7

from diaspora_devstack.fastdb import RolledBack
from diaspora_devstack.testing import DeadLetters, event_record, publish_in_memory
from diaspora_events.consumer import EventConsumer, Outcome
from diaspora_events.contracts.registry import MemberErasedV1
from diaspora_events.runtime import subscribe
from matching.experts.consumer import CONSUMER_NAME, build_consumer
from matching.experts.tables import experts
from matching.tables import inbox

SOURCE = "/tg/diaspora/registry"


def consumer_on(tx: RolledBack, dead: DeadLetters | None = None) -> EventConsumer:
    return build_consumer(sessions=tx.sessions, dead_letters=dead or DeadLetters())


async def expert(tx: RolledBack, member_id: UUID) -> dict[str, Any] | None:
    async with tx.sessions() as session:
        row = (
            (await session.execute(select(experts).where(experts.c.member_id == member_id)))
            .mappings()
            .first()
        )
    return dict(row) if row else None


async def handled(tx: RolledBack) -> int:
    async with tx.sessions() as session:
        found = await session.execute(
            select(func.count()).select_from(inbox).where(inbox.c.consumer == CONSUMER_NAME)
        )
    return int(found.scalar_one())


async def test_a_consenting_members_update_makes_an_expert_with_their_profile(
    matching_tx: RolledBack,
) -> None:
    dead = DeadLetters()
    consumer = consumer_on(matching_tx, dead)
    member = new_member_id()
    doctor = profile(
        given_name="Kossi",
        languages=["fr", "en"],
        occupations=[("2211", "Médecin généraliste")],
        skills=["chirurgie", ("http://data.europa.eu/esco/skill/x", "soins d'urgence")],
        education=[(7, "médecine")],
    )

    outcome = await consumer.handle_record(event_record(updated(member, doctor), source=SOURCE))

    assert outcome is Outcome.HANDLED
    row = await expert(matching_tx, member)
    assert row is not None
    assert row["languages"] == ["en", "fr"]
    assert row["isco_units"] == ["2211"]
    assert row["isco_minors"] == ["221"]
    assert row["isco_submajors"] == ["22"]
    assert row["max_isced_level"] == 7
    assert row["skill_uris"] == ["http://data.europa.eu/esco/skill/x"]
    assert "chirurgie" in str(row["search_text"])
    assert dead.records == []


async def test_a_member_without_consent_is_no_expert(matching_tx: RolledBack) -> None:
    consumer = consumer_on(matching_tx)
    refusing = new_member_id()

    record = event_record(updated(refusing, profile(consent=False)), source=SOURCE)
    assert await consumer.handle_record(record) is Outcome.HANDLED

    assert await expert(matching_tx, refusing) is None
    assert await handled(matching_tx) == 1  # handled (and recorded), not skipped


async def test_a_redelivered_event_id_is_not_applied_again(matching_tx: RolledBack) -> None:
    """The consent arrives, then its withdrawal; the consent's record delivered again (a
    relay crash, a rebalance) must not bring the expert back."""
    consumer = consumer_on(matching_tx)
    member = new_member_id()
    consent_id = uuid7()
    consent = event_record(updated(member, profile()), source=SOURCE, event_id=consent_id)
    withdrawal = event_record(updated(member, profile(consent=False)), source=SOURCE)

    assert await consumer.handle_record(consent) is Outcome.HANDLED
    assert await expert(matching_tx, member) is not None
    assert await consumer.handle_record(withdrawal) is Outcome.HANDLED
    assert await expert(matching_tx, member) is None

    # The same event id, built again now (so newer than the withdrawal: only the inbox,
    # not the projection's ordering by time, refuses it).
    again = event_record(updated(member, profile()), source=SOURCE, event_id=consent_id)
    assert await consumer.handle_record(again) is Outcome.DUPLICATE
    assert await expert(matching_tx, member) is None
    assert await handled(matching_tx) == 2


async def test_an_erasure_through_the_worker_subscription_removes_the_expert(
    matching_tx: RolledBack,
) -> None:
    """Through FastStream's in-memory broker, as the worker subscribes the consumer."""
    consumer = consumer_on(matching_tx)
    broker = KafkaBroker()
    subscribe(broker, consumer)
    member = new_member_id()

    async with TestKafkaBroker(broker) as test_broker:
        await publish_in_memory(test_broker, updated(member, profile()), source=SOURCE)
        assert await expert(matching_tx, member) is not None
        erased = MemberErasedV1(member_id=member, erased_at=datetime.now(UTC))
        await publish_in_memory(test_broker, erased, source=SOURCE)

    assert await expert(matching_tx, member) is None
    assert await handled(matching_tx) == 2
