"""Unit tests: CloudEvents codec, contract registry, routing and error descriptions."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import MetaData
from uuid_utils.compat import uuid7

from diaspora_events.cloudevents import MalformedEvent, decode, encode
from diaspora_events.consumer import EventConsumer, Outcome, Record, inbox_table
from diaspora_events.contracts import MemberRegisteredV1, UnknownEventType, contract_for
from diaspora_events.observability import describe_error


def member() -> MemberRegisteredV1:
    return MemberRegisteredV1(
        member_id=uuid7(),
        given_name="Elom",
        family_name="Amouzou",
        date_of_birth=date(1992, 3, 4),
        email="elom@example.org",
        phone="+22890123456",
        country_of_residence="GH",
        registered_at=datetime(2026, 1, 2, tzinfo=UTC),
    )


def test_binary_mode_round_trip() -> None:
    event = member()
    event_id, headers, value = encode(event, source="/tg/diaspora/registry", subject="s")
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_type"] == "registry.member.registered"
    assert headers["ce_dataversion"] == "1"
    assert headers["content-type"] == "application/json"
    envelope = decode(headers, value)
    assert envelope.id == event_id
    assert envelope.subject == "s"
    assert envelope.to_event() == event


@pytest.mark.parametrize(
    ("headers", "value"),
    [
        ({}, b"{}"),
        ({"ce_specversion": "1.0"}, b"{}"),
        (
            {
                "ce_specversion": "1.0",
                "ce_id": "x",
                "ce_type": "t",
                "ce_source": "s",
                "ce_time": "2026-01-01T00:00:00Z",
            },
            b"{}",
        ),
        (
            {
                "ce_specversion": "1.0",
                "ce_id": str(uuid7()),
                "ce_type": "t",
                "ce_source": "s",
                "ce_time": "2026-01-01T00:00:00Z",
            },
            b"[1, 2]",
        ),
    ],
)
def test_undecodable_records_are_malformed(headers: dict[str, str], value: bytes) -> None:
    with pytest.raises(MalformedEvent):
        decode(headers, value)


def test_contracts_are_found_by_type_and_version_and_mark_personal_fields() -> None:
    assert contract_for("registry.member.registered", 1) is MemberRegisteredV1
    with pytest.raises(UnknownEventType):
        contract_for("registry.member.registered", 99)
    assert {"given_name", "family_name", "email", "phone"} <= MemberRegisteredV1.personal_fields()
    redacted = member().redacted()
    assert redacted["email"] == "***"
    assert redacted["member_id"] != "***"


def test_errors_are_described_without_personal_data() -> None:
    with pytest.raises(ValidationError) as caught:
        MemberRegisteredV1.model_validate({**member().model_dump(), "date_of_birth": "Elom-secret"})
    text = describe_error(caught.value)
    assert "date_of_birth" in text
    assert "Elom-secret" not in text


async def test_a_version_the_consumer_does_not_read_is_ignored_not_dead_lettered() -> None:
    dead: list[dict[str, Any]] = []

    async def sink(**kwargs: Any) -> None:
        dead.append(kwargs)

    consumer = EventConsumer(
        name="unit",
        session_factory=None,  # type: ignore[arg-type]  # never reached for ignored records
        inbox=inbox_table(MetaData()),
        dead_letters=sink,
    )

    @consumer.on(MemberRegisteredV1)
    async def handle(*_args: object) -> None:
        raise AssertionError("must not be called")

    _id, headers, value = encode(member(), source="/test")
    for version in ("2", "7"):
        record = Record(
            topic="registry.members",
            partition=0,
            offset=1,
            key=b"k",
            value=value,
            headers={**headers, "ce_dataversion": version},
        )
        assert await consumer.handle_record(record) is Outcome.IGNORED
    other = Record(
        topic="registry.members",
        partition=0,
        offset=2,
        key=b"k",
        value=value,
        headers={**headers, "ce_type": "registry.member.updated"},
    )
    assert await consumer.handle_record(other) is Outcome.IGNORED
    assert dead == []
