"""Helpers for tests and benchmarks of the notifications service (not shipped: on the
test path through pytest's `pythonpath`, see the root pyproject.toml)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaProducer
from sqlalchemy import func, insert, select
from uuid_utils.compat import uuid7

from diaspora_devstack.testing import publish_outbox as publish_outbox_rows
from diaspora_devstack.testing import read_topic, wait_consumed
from diaspora_events.cloudevents import decode, encode, headers_from_kafka, headers_to_kafka
from diaspora_events.contracts import Event, MemberRegisteredV1
from diaspora_events.topics import REGISTRY_MEMBERS, Topic
from notifications.bootstrap import CONSUMER_NAME
from notifications.contacts.verification import confirm_link
from notifications.deliveries.tables import deliveries
from notifications.preferences.tables import preferences
from notifications.resources import Notifications
from notifications.tables import outbox, recipients


def registered(
    name: str,
    email: str,
    language: str = "fr",
    *,
    country: str = "DE",
    phone: str = "+4915112345678",
) -> MemberRegisteredV1:
    return MemberRegisteredV1(
        member_id=uuid7(),
        given_name=name,
        family_name="Agbeko",
        date_of_birth=date(1985, 6, 1),
        email=email,
        phone=phone,
        country_of_residence=country,
        preferred_language=language,
        registered_at=datetime(2026, 4, 27, 10, 30, tzinfo=UTC),
    )


async def publish(bootstrap: str, topic: str, *events: Event, times: int = 1) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for event in events:
            _id, headers, value = encode(event, source="/test")
            for _ in range(times):
                await producer.send_and_wait(
                    topic,
                    value=value,
                    key=event.aggregate_id().encode(),
                    headers=headers_to_kafka(headers),
                )
    finally:
        await producer.stop()


async def add_recipient(
    service: Notifications,
    *,
    given_name: str = "Ama",
    family_name: str = "Kouévi",
    email: str | None = None,
    phone: str | None = None,
    language: str = "fr",
    country: str = "FR",
    occupations: list[str] | None = None,
    prefs: dict[str, Any] | None = None,
    verified: bool = True,
) -> UUID:
    """A recipient; its email and phone are verified unless ``verified=False``."""
    member_id = uuid7()
    now = datetime.now(UTC)
    async with service.sessions() as session, session.begin():
        await session.execute(
            insert(recipients).values(
                member_id=member_id,
                given_name=given_name,
                family_name=family_name,
                email=email,
                phone=phone,
                language=language,
                country_of_residence=country,
                occupations=occupations or [],
                email_verified_at=now if verified and email else None,
                phone_verified_at=now if verified and phone else None,
                welcomed_at=now,
            )
        )
        if prefs is not None:
            await session.execute(
                insert(preferences).values(
                    member_id=member_id, **{"channels": ["email", "sms", "inbox"], **prefs}
                )
            )
    return member_id


async def deliveries_of(service: Notifications, member_id: UUID | None = None) -> list[Any]:
    query = select(deliveries).order_by(deliveries.c.created_at)
    if member_id is not None:
        query = query.where(deliveries.c.recipient_id == member_id)
    async with service.sessions() as session:
        return list((await session.execute(query)).all())


async def deliveries_settled(service: Notifications) -> bool:
    """Every queued delivery was handled (sent, failed or cancelled): none is pending.
    With the consumer's input consumed (``wait_consumed``), what was to be sent was sent."""
    async with service.sessions() as session:
        pending = await session.scalar(
            select(func.count()).select_from(deliveries).where(deliveries.c.status == "pending")
        )
    return pending == 0


async def wait_worker_consumed(
    service: Notifications, *topics: Topic, timeout: float = 30.0
) -> None:
    """Wait until the worker's consumer committed every record published so far on
    ``topics`` (each was handled: its deliveries are queued)."""
    settings = service.settings
    await wait_consumed(
        settings.kafka_bootstrap,
        settings.topic_prefix + CONSUMER_NAME,
        [settings.topic_prefix + topic.name for topic in topics],
        timeout=timeout,
    )


async def wait_members_consumed(service: Notifications, *, timeout: float = 30.0) -> None:
    """:func:`wait_worker_consumed` of the registry's members topic."""
    await wait_worker_consumed(service, REGISTRY_MEMBERS, timeout=timeout)


VERIFICATION_LINK = re.compile(r"confirm\?token=([A-Za-z0-9_\-]+)")


def verification_token(text: str) -> str:
    """The token of the verification link in an email's text."""
    found = VERIFICATION_LINK.search(text)
    if found is None:
        raise AssertionError(f"no verification link in {text!r}")
    return found.group(1)


async def confirm_email(service: Notifications, mail_text: str) -> UUID:
    """Confirm an address with the link of its verification email, as the person opening
    it does (POST /contacts/email/confirm); returns the member id. The welcome follows."""
    async with service.sessions() as session, session.begin():
        member_id, _at = await confirm_link(
            session,
            service.outbox,
            verification_token(mail_text),
            available=service.settings.available_channels,
        )
    return member_id


async def publish_outbox(service: Notifications) -> int:
    """Run the outbox relay, as the worker does, until every pending row is published;
    returns how many rows were pending."""
    return await publish_outbox_rows(
        service.engine,
        outbox,
        kafka_bootstrap=service.settings.kafka_bootstrap,
        topic_prefix=service.settings.topic_prefix,
        client_id="notifications-test-relay",
    )


async def events_on(
    service: Notifications, topic: Topic, *, expect: int
) -> list[tuple[str, str, Any]]:
    """(type, key, event) of the events on one of the platform's topics, from the broker."""
    settings = service.settings
    records = await read_topic(
        settings.kafka_bootstrap, settings.topic_prefix + topic.name, expect=expect, timeout=20
    )
    found = []
    for record in records:
        envelope = decode(headers_from_kafka(record.headers), record.value)
        found.append((envelope.type, record.key.decode(), envelope.to_event()))
    return found
