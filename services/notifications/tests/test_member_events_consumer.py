"""The notifications consumer's member handlers (fast tier): a registration queues the
verification of the address, a proposal reaches the in-app inbox, and a redelivered
event queues nothing more; on a rolled-back database, without Kafka or SMTP.
(The same on the real broker and mailbox: test_welcome_email.py.)"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from faststream.kafka import KafkaBroker, TestKafkaBroker
from notifications_testing import registered
from sqlalchemy import Table, select
from uuid_utils.compat import uuid7

from diaspora_devstack.fastdb import RolledBack
from diaspora_devstack.testing import DeadLetters, event_record, publish_in_memory
from diaspora_events.consumer import EventConsumer, Outcome
from diaspora_events.contracts import MatchProposedV1
from diaspora_events.runtime import subscribe
from notifications.bootstrap import build_consumer
from notifications.contacts.tables import contact_verifications
from notifications.deliveries.tables import deliveries
from notifications.preferences.tables import inbox_messages
from notifications.tables import recipients

REGISTRY = "/tg/diaspora/registry"
MATCHING = "/tg/diaspora/matching"


def consumer_on(tx: RolledBack, dead: DeadLetters | None = None) -> EventConsumer:
    return build_consumer(sessions=tx.sessions, dead_letters=dead or DeadLetters())


async def rows(tx: RolledBack, table: Table) -> list[dict[str, Any]]:
    async with tx.sessions() as session:
        return [dict(r) for r in (await session.execute(select(table))).mappings()]


def proposed(member_id: UUID) -> MatchProposedV1:
    return MatchProposedV1(
        proposal_id=uuid7(),
        need_id=uuid7(),
        member_id=member_id,
        proposed_at=datetime(2026, 5, 4, 9, 0, tzinfo=UTC),
        respond_by=date(2026, 5, 18),
        need_title="Chirurgien pour le CHU de Kara",
        need_type="medical",
        institution="CHU de Kara",
        region="TG-K",
        score=0.8,
    )


async def test_a_registration_queues_the_verification_of_the_address(
    notifications_tx: RolledBack,
) -> None:
    dead = DeadLetters()
    consumer = consumer_on(notifications_tx, dead)
    event = registered("Kossi", "kossi@example.org", "fr")

    outcome = await consumer.handle_record(event_record(event, source=REGISTRY))

    assert outcome is Outcome.HANDLED
    [recipient] = await rows(notifications_tx, recipients)
    assert recipient["member_id"] == event.member_id
    assert recipient["language"] == "fr"
    [verification] = await rows(notifications_tx, contact_verifications)
    assert (verification["kind"], verification["address"], verification["status"]) == (
        "email",
        "kossi@example.org",
        "pending",
    )
    # The first message is that verification, and only it: the welcome waits for it.
    [delivery] = await rows(notifications_tx, deliveries)
    assert delivery["recipient_id"] == event.member_id
    assert (delivery["channel"], delivery["template"], delivery["status"]) == (
        "email",
        "contact_verification_email",
        "pending",
    )
    assert delivery["address"] == "kossi@example.org"
    assert delivery["language"] == "fr"
    assert delivery["subject"].startswith("Confirmez votre adresse")
    assert dead.records == []


async def test_a_proposal_reaches_the_experts_inbox(notifications_tx: RolledBack) -> None:
    consumer = consumer_on(notifications_tx)
    member = registered("Ama", "ama@example.org", "fr")
    await consumer.handle_record(event_record(member, source=REGISTRY))

    proposal = proposed(member.member_id)
    outcome = await consumer.handle_record(event_record(proposal, source=MATCHING))

    assert outcome is Outcome.HANDLED
    [message] = await rows(notifications_tx, inbox_messages)
    assert "Chirurgien pour le CHU de Kara" in message["title"] + message["body"]
    assert message["read_at"] is None
    by_template = {d["template"]: d for d in await rows(notifications_tx, deliveries)}
    assert set(by_template) == {"contact_verification_email", "match_proposed"}
    assert message["delivery_id"] == by_template["match_proposed"]["id"]


async def test_a_redelivered_event_queues_nothing_more(notifications_tx: RolledBack) -> None:
    consumer = consumer_on(notifications_tx)
    member = registered("Yawa", "yawa@example.org", "en")
    registration = event_record(member, source=REGISTRY)
    proposal = event_record(proposed(member.member_id), source=MATCHING)
    for record in (registration, proposal):
        assert await consumer.handle_record(record) is Outcome.HANDLED
    before = (
        await rows(notifications_tx, deliveries),
        await rows(notifications_tx, inbox_messages),
        await rows(notifications_tx, contact_verifications),
    )
    assert len(before[0]) == 2  # something to duplicate, if the inbox let it through

    for record in (registration, proposal):
        assert await consumer.handle_record(record) is Outcome.DUPLICATE

    after = (
        await rows(notifications_tx, deliveries),
        await rows(notifications_tx, inbox_messages),
        await rows(notifications_tx, contact_verifications),
    )
    assert after == before


async def test_the_worker_subscription_feeds_the_handlers(notifications_tx: RolledBack) -> None:
    """Through FastStream's in-memory broker, as the worker subscribes its consumer."""
    consumer = consumer_on(notifications_tx)
    broker = KafkaBroker()
    subscribe(broker, consumer)
    member = registered("Komla", "komla@example.org", "fr")

    async with TestKafkaBroker(broker) as test_broker:
        await publish_in_memory(test_broker, member, source=REGISTRY)
        await publish_in_memory(test_broker, proposed(member.member_id), source=MATCHING)

    templates = sorted(d["template"] for d in await rows(notifications_tx, deliveries))
    assert templates == ["contact_verification_email", "match_proposed"]
    assert len(await rows(notifications_tx, inbox_messages)) == 1
