"""Registry member snapshots and events for tests and benchmarks of the experts read
model (not shipped)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import uuid_utils.compat as uuid_compat
from aiokafka import AIOKafkaProducer

from diaspora_events.cloudevents import encode, headers_to_kafka
from diaspora_events.contracts.base import Event
from diaspora_events.contracts.registry import (
    Availability,
    Consent,
    Education,
    Experience,
    MemberProfile,
    MemberUpdatedV1,
    Occupation,
    Skill,
)
from diaspora_events.kafka import ensure_topics
from diaspora_events.topics import REGISTRY_MEMBERS


def profile(
    *,
    given_name: str = "Akossiwa",
    family_name: str = "Mensah",
    country: str = "FR",
    embassy_id: str = "fr-paris",
    preferred_language: str = "fr",
    languages: Iterable[str] = ("fr",),
    occupations: Iterable[str | tuple[str, str]] = (),
    skills: Iterable[str | tuple[str, str]] = (),
    education: Iterable[int | tuple[int, str]] = (),
    experience: Iterable[tuple[str, str | None, int | None, int | None]] = (),
    mission_types: Iterable[str] = ("teaching", "medical", "technical_assistance"),
    available_from: date | None = None,
    available_until: date | None = None,
    remote: bool = False,
    consent: bool | None = True,
) -> MemberProfile:
    """A member snapshot. Occupations: ISCO code or (code, title); skills: label or
    (ESCO URI, label); education: ISCED level or (level, field); experience: (title,
    ISCO code, start year, end year)."""
    consents = []
    if consent is not None:
        consents.append(
            Consent(purpose="contact_for_missions", granted=consent, at=datetime.now(UTC))
        )
    return MemberProfile(
        given_name=given_name,
        family_name=family_name,
        date_of_birth=date(1985, 3, 14),
        email=f"{given_name.lower()}.{family_name.lower()}@example.org",
        phone="+33612345678",
        preferred_language=preferred_language,
        country_of_residence=country,
        embassy_id=embassy_id,
        languages=list(languages),
        occupations=[
            Occupation(isco_code=o)
            if isinstance(o, str)
            else Occupation(isco_code=o[0], title=o[1])
            for o in occupations
        ],
        skills=[
            Skill(label=s) if isinstance(s, str) else Skill(esco_uri=s[0], label=s[1])
            for s in skills
        ],
        education=[
            Education(isced_level=e)
            if isinstance(e, int)
            else Education(isced_level=e[0], field=e[1])
            for e in education
        ],
        experience=[
            Experience(title=t, isco_code=c, start_year=s, end_year=e) for t, c, s, e in experience
        ],
        availability=Availability(
            mission_types=list(mission_types),
            available_from=available_from,
            available_until=available_until,
            remote=remote,
        ),
        consents=consents,
    )


def updated(member_id: UUID, snapshot: MemberProfile, **extra: Any) -> MemberUpdatedV1:
    return MemberUpdatedV1(
        member_id=member_id,
        updated_at=datetime.now(UTC),
        changed_fields=["profile"],
        profile=snapshot,
        **extra,
    )


def new_member_id() -> UUID:
    return uuid_compat.uuid7()


async def publish(bootstrap: str, topic: str, *events: Event | tuple[Event, datetime]) -> None:
    """Publish registry events as the registry's relay does (CloudEvents, keyed by member);
    an event may come with the time it claims to have been published at. The topic is
    created first if missing, with the settings of ``registry.members``."""
    await ensure_topics(bootstrap, [replace(REGISTRY_MEMBERS, name=topic)])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for item in events:
            event, at = item if isinstance(item, tuple) else (item, None)
            _id, headers, value = encode(event, source="/tg/diaspora/registry", time=at)
            await producer.send_and_wait(
                topic,
                value=value,
                key=event.aggregate_id().encode(),
                headers=headers_to_kafka(headers),
            )
    finally:
        await producer.stop()
