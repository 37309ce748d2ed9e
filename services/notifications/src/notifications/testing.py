"""Helpers for tests and benchmarks of the notifications service (never used in production)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaProducer
from sqlalchemy import insert, select
from uuid_utils.compat import uuid7

from diaspora_events.cloudevents import encode, headers_to_kafka
from diaspora_events.contracts import Event, MemberRegisteredV1
from notifications.adapters.orm import deliveries, preferences, recipients
from notifications.bootstrap import Notifications


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
) -> UUID:
    member_id = uuid7()
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
