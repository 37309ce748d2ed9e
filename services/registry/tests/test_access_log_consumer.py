"""The access-log consumer (fast tier): other services' audit events become rows of
``member_accesses``, once each, on a rolled-back database, without Kafka."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from faststream.kafka import KafkaBroker, TestKafkaBroker
from sqlalchemy import select
from uuid_utils.compat import uuid7

from diaspora_devstack.fastdb import RolledBack
from diaspora_devstack.testing import DeadLetters, event_record, publish_in_memory
from diaspora_events.consumer import Outcome
from diaspora_events.contracts.consular import ConsularAuditRecordedV1
from diaspora_events.contracts.matching import MatchingAuditRecordedV1
from diaspora_events.contracts.notifications import NotificationsAuditRecordedV1
from diaspora_events.contracts.returnees import ReturneesAuditRecordedV1
from diaspora_events.runtime import subscribe
from registry.access_log.consumer import CONSUMER_NAME, build_consumer
from registry.access_log.tables import member_accesses
from registry.tables import inbox


def audited(contract: Any, record_id: UUID, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "audit_id": uuid7(),
        "occurred_at": datetime(2026, 5, 4, 9, 30, tzinfo=UTC),
        "actor_subject": "officer-1",
        "actor_roles": ["embassy_officer"],
        "actor_is_service": False,
        "action": "read",
        "resource": "expert",
        "record_id": record_id,
        "fields": ["given_name", "skills"],
        **overrides,
    }
    return contract(**values)


async def accesses(tx: RolledBack, record_id: UUID) -> list[dict[str, Any]]:
    async with tx.sessions() as session:
        rows = await session.execute(
            select(member_accesses)
            .where(member_accesses.c.record_id == record_id)
            .order_by(member_accesses.c.service)
        )
        return [dict(row) for row in rows.mappings()]


async def inbox_entries(tx: RolledBack) -> int:
    async with tx.sessions() as session:
        found = await session.execute(
            select(inbox.c.event_id).where(inbox.c.consumer == CONSUMER_NAME)
        )
        return len(found.all())


async def test_each_services_audit_event_is_one_access_named_after_its_service(
    registry_tx: RolledBack,
) -> None:
    dead = DeadLetters()
    consumer = build_consumer(sessions=registry_tx.sessions, dead_letters=dead)
    member = uuid7()
    by_matching = audited(MatchingAuditRecordedV1, member)
    by_notifications = audited(
        NotificationsAuditRecordedV1, member, resource="deliveries", fields=["email"]
    )
    by_consular = audited(
        ConsularAuditRecordedV1, member, resource="consular_application", fields=["status"]
    )

    for event in (by_matching, by_notifications, by_consular):
        assert await consumer.handle_record(event_record(event)) is Outcome.HANDLED

    rows = await accesses(registry_tx, member)
    assert [(r["service"], r["audit_id"], r["resource"], r["fields"]) for r in rows] == [
        ("consular", by_consular.audit_id, "consular_application", ["status"]),
        ("matching", by_matching.audit_id, "expert", ["given_name", "skills"]),
        ("notifications", by_notifications.audit_id, "deliveries", ["email"]),
    ]
    assert rows[1]["actor_subject"] == "officer-1"
    assert rows[1]["actor_roles"] == ["embassy_officer"]
    assert rows[1]["occurred_at"] == by_matching.occurred_at
    assert dead.records == []


async def test_a_redelivered_event_adds_nothing(registry_tx: RolledBack) -> None:
    consumer = build_consumer(sessions=registry_tx.sessions, dead_letters=DeadLetters())
    member = uuid7()
    record = event_record(audited(MatchingAuditRecordedV1, member))

    assert await consumer.handle_record(record) is Outcome.HANDLED
    assert await consumer.handle_record(record) is Outcome.DUPLICATE
    assert len(await accesses(registry_tx, member)) == 1
    assert await inbox_entries(registry_tx) == 1


async def test_a_template_preview_is_nobodys_access(registry_tx: RolledBack) -> None:
    consumer = build_consumer(sessions=registry_tx.sessions, dead_letters=DeadLetters())
    template_version = uuid7()
    preview = audited(
        NotificationsAuditRecordedV1, template_version, resource="notification_template"
    )

    assert await consumer.handle_record(event_record(preview)) is Outcome.HANDLED
    assert await accesses(registry_tx, template_version) == []
    assert await inbox_entries(registry_tx) == 1  # handled, and not handled again


async def test_a_consular_catalogue_edit_is_nobodys_access(registry_tx: RolledBack) -> None:
    consumer = build_consumer(sessions=registry_tx.sessions, dead_letters=DeadLetters())
    catalogue_version = uuid7()
    edit = audited(
        ConsularAuditRecordedV1,
        catalogue_version,
        action="update",
        resource="consular_service_type",
    )

    assert await consumer.handle_record(event_record(edit)) is Outcome.HANDLED
    assert await accesses(registry_tx, catalogue_version) == []
    assert await inbox_entries(registry_tx) == 1


async def test_a_returnees_partner_edit_is_nobodys_access(registry_tx: RolledBack) -> None:
    consumer = build_consumer(sessions=registry_tx.sessions, dead_letters=DeadLetters())
    partner_version = uuid7()
    edit = audited(
        ReturneesAuditRecordedV1, partner_version, action="create", resource="returnee_partner"
    )

    assert await consumer.handle_record(event_record(edit)) is Outcome.HANDLED
    assert await accesses(registry_tx, partner_version) == []
    assert await inbox_entries(registry_tx) == 1


async def test_the_worker_subscription_feeds_the_handler(registry_tx: RolledBack) -> None:
    """Through FastStream's in-memory broker: the worker's subscription (topics, group,
    record conversion) reaches the handler, with no Kafka."""
    consumer = build_consumer(sessions=registry_tx.sessions, dead_letters=DeadLetters())
    broker = KafkaBroker()
    subscribe(broker, consumer)
    member = uuid7()
    event = audited(MatchingAuditRecordedV1, member)

    async with TestKafkaBroker(broker) as test_broker:
        await publish_in_memory(test_broker, event)

    [row] = await accesses(registry_tx, member)
    assert row["audit_id"] == event.audit_id
    assert row["service"] == "matching"
