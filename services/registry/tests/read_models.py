"""Helpers for the read models' tests: publish member events, wait for the consumer (test only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select
from uuid_utils.compat import uuid7

from diaspora_events.cloudevents import encode, headers_to_kafka
from diaspora_events.contracts import Event
from diaspora_events.contracts.registry import MemberProfile, MemberRegisteredV1
from registry.resources import Registry
from registry.statistics.consumer import CONSUMER_NAME
from registry.tables import inbox


def profile(**overrides: Any) -> MemberProfile:
    values: dict[str, Any] = {
        "given_name": "Kossi",
        "family_name": "Agbéko",
        "date_of_birth": date(1988, 3, 14),
        "sex": "male",
        "email": "kossi@example.org",
        "phone": "+33612345678",
        "country_of_residence": "FR",
        "embassy_id": "fr-paris",
        "languages": ["fr", "ee"],
    }
    values.update(overrides)
    return MemberProfile.model_validate(values)


def registered(
    member_profile: MemberProfile, *, member_id: UUID | None = None, at: datetime | None = None
) -> MemberRegisteredV1:
    p = member_profile
    return MemberRegisteredV1(
        member_id=member_id or uuid7(),
        given_name=p.given_name,
        family_name=p.family_name,
        date_of_birth=p.date_of_birth,
        email=p.email,
        phone=p.phone,
        country_of_residence=p.country_of_residence,
        preferred_language=p.preferred_language,
        registered_at=at or datetime.now(UTC),
        profile=p,
    )


async def publish(bootstrap: str, topic: str, events: Sequence[Event], *, times: int = 1) -> None:
    """Publish each event ``times`` times in a row (a relay that crashed after sending)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for event in events:
            _id, headers, value = encode(event, source="/tg/diaspora/registry")
            for _ in range(times):
                await producer.send_and_wait(
                    topic,
                    value=value,
                    key=event.aggregate_id().encode(),
                    headers=headers_to_kafka(headers),
                )
    finally:
        await producer.stop()


async def handled(registry: Registry) -> int:
    """How many distinct events the read models' consumer has applied."""
    async with registry.sessions() as session:
        found = await session.execute(
            select(func.count()).select_from(inbox).where(inbox.c.consumer == CONSUMER_NAME)
        )
        return int(found.scalar_one())
