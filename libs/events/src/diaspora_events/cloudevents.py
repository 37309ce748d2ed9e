"""CloudEvents 1.0, Kafka protocol binding, binary content mode.

Attributes travel as ``ce_*`` headers, the data as JSON in the record value, the
aggregate id as the record key. W3C ``traceparent`` travels as a header too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import uuid_utils.compat as uuid_compat

from diaspora_events.contracts.base import Event, contract_for

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
# CloudEvents extension attribute carrying the contract version (the type string stays stable).
VERSION_ATTRIBUTE = "dataversion"


class MalformedEvent(ValueError):
    """A record that is not a CloudEvent this platform can read."""


@dataclass(frozen=True)
class Envelope:
    """A CloudEvent as read from Kafka: attributes plus undecoded JSON data."""

    id: UUID
    type: str
    version: int
    source: str
    time: datetime
    subject: str | None
    data: dict[str, Any]
    headers: dict[str, str]

    @property
    def traceparent(self) -> str | None:
        return self.headers.get("traceparent")

    def to_event(self) -> Event:
        """Validate the data against the registered contract (raises UnknownEventType)."""
        return contract_for(self.type, self.version).model_validate(self.data)


def new_event_id() -> UUID:
    return uuid_compat.uuid7()


def dataschema(event_type: str, version: int) -> str:
    return f"urn:tg-diaspora:events:{event_type}:v{version}"


def encode(
    event: Event,
    *,
    source: str,
    event_id: UUID | None = None,
    time: datetime | None = None,
    subject: str | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> tuple[UUID, dict[str, str], bytes]:
    """The headers and JSON value of a CloudEvent in Kafka binary mode."""
    event_id = event_id or new_event_id()
    headers = attributes(
        event.event_type,
        event.event_version,
        source=source,
        event_id=str(event_id),
        time=time or datetime.now(UTC),
        subject=subject,
        extra_headers=extra_headers,
    )
    value = json.dumps(event.model_dump(mode="json"), separators=(",", ":")).encode()
    return event_id, headers, value


def attributes(
    event_type: str,
    version: int,
    *,
    source: str,
    event_id: str,
    time: datetime,
    subject: str | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The ``ce_*`` headers (and any extra ones) of an event of this type and version."""
    headers = {
        "ce_specversion": SPEC_VERSION,
        "ce_id": event_id,
        "ce_type": event_type,
        "ce_source": source,
        "ce_time": time.isoformat(),
        "ce_dataschema": dataschema(event_type, version),
        f"ce_{VERSION_ATTRIBUTE}": str(version),
        "content-type": CONTENT_TYPE,
    }
    if subject:
        headers["ce_subject"] = subject
    if extra_headers:
        headers.update(extra_headers)
    return headers


def headers_to_kafka(headers: Mapping[str, str]) -> list[tuple[str, bytes]]:
    return [(name, value.encode()) for name, value in headers.items()]


def headers_from_kafka(raw: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str]:
    return {name: (value or b"").decode("utf-8", "replace") for name, value in (raw or ())}


def decode(headers: Mapping[str, str], value: bytes | None) -> Envelope:
    """Read a binary-mode CloudEvent; raises MalformedEvent with the reason."""
    try:
        if headers.get("ce_specversion") != SPEC_VERSION:
            raise MalformedEvent(f"ce_specversion is {headers.get('ce_specversion')!r}")
        data = json.loads(value or b"null")
        if not isinstance(data, dict):
            raise MalformedEvent("data is not a JSON object")
        return Envelope(
            id=UUID(headers["ce_id"]),
            type=headers["ce_type"],
            version=int(headers.get(f"ce_{VERSION_ATTRIBUTE}", "1")),
            source=headers["ce_source"],
            time=datetime.fromisoformat(headers["ce_time"]),
            subject=headers.get("ce_subject"),
            data=data,
            headers=dict(headers),
        )
    except MalformedEvent:
        raise
    except (KeyError, ValueError, UnicodeDecodeError) as error:
        raise MalformedEvent(f"not a readable CloudEvent: {error!r}") from error
