"""What an import batch writes for each row, built without a model per row.

A registration builds its members row, its "registered" history line and its
events through the command, the record view and the event models
(:func:`registry.members.service.registration_columns`, :func:`registry.members.records.view_of`,
:func:`registry.members.service.registered_event`, :func:`registry.members.service.audit_event`).
An import does that for thousands of rows per batch, in the event loop that also
writes them, and about half of that work was building and serialising models
whose content is known: the parts a row leaves empty (the same columns every
time), the profile snapshot of the event, the audit event that differs from row
to row only by two ids. Here the same values are built directly: the members row
from the validated body, the history line's JSON in one encoding, the events'
JSON from plain dicts (the parts a row does give still go through their models).

What comes out is what the one-by-one functions produce, value for value and
byte for byte (``tests/test_import_rows.py`` compares them over rows with and
without every optional part, unicode included). The events are still checked
against their contracts: the registration events' data with one validation per
batch (:func:`registered_events`), the audit events' shared values by the one
model made per batch (the ids put in are UUIDs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, TypeAdapter
from pydantic_core import to_json

from diaspora_events.contracts import MemberRegisteredV1, RegistryAuditRecordedV1
from diaspora_events.contracts.registry import (
    Availability as AvailabilitySnapshot,
)
from diaspora_events.contracts.registry import (
    City,
    Education,
    Experience,
    Occupation,
    Skill,
)
from diaspora_events.jsontext import split_around
from registry.bulk import json_text
from registry.members.records import history_value, profile_columns, view_of
from registry.members.service import OPTIONAL_PARTS, given_at_registration

# The members columns that are JSONB (sent to COPY as JSON text).
MEMBER_JSON = frozenset(
    {"postal_address", "occupations", "skills", "education", "experience", "availability"}
)


def _fresh(value: list[Any] | dict[str, Any]) -> Any:
    """A copy of an empty part's list or dict, and of the lists in it (no two rows share a
    mutable value; those values hold nothing deeper: tests/test_import_rows.py)."""
    if isinstance(value, list):
        return value.copy()
    return {k: v.copy() if isinstance(v, list) else v for k, v in value.items()}


# A part left out of RegisterMember gives the same columns as None (profile_columns treats
# both alike), so the empty parts' columns are computed once, in OPTIONAL_PARTS' order.
_EMPTY_PARTS: dict[str, dict[str, Any]] = {
    name: profile_columns({name: None}, country="TG") for name in OPTIONAL_PARTS
}
_ALL_EMPTY: dict[str, Any] = {k: v for part in _EMPTY_PARTS.values() for k, v in part.items()}
# Those holding a list or a dict, copied for each row.
_MUTABLE_EMPTY = tuple((k, v) for k, v in _ALL_EMPTY.items() if isinstance(v, list | dict))
_REGISTERED = TypeAdapter(list[MemberRegisteredV1])
_SNAPSHOT_PARTS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("occupations", Occupation),
    ("skills", Skill),
    ("education", Education),
    ("experience", Experience),
)
# The snapshot of an availability left as registered by default, as the event model dumps it.
_DEFAULT_AVAILABILITY = AvailabilitySnapshot(**_EMPTY_PARTS["availability"]["availability"])


def member_columns(
    body: Any,
    *,
    member_id: UUID,
    embassy_id: str,
    registered_by: str,
    by_role: str,
    consent_method: str,
    consent_reference: str | None,
    now: datetime,
) -> dict[str, Any]:
    """``registration_columns(body.command(None), ...)`` of an imported row (no owner,
    digest or idempotency key), without the command and the models of empty parts."""
    country = body.country_of_residence
    values: dict[str, Any] = {
        "id": member_id,
        "given_name": body.given_name,
        "family_name": body.family_name,
        "date_of_birth": body.date_of_birth,
        "country_of_residence": country,
        "email": body.email,
        "phone": body.phone,
        "preferred_language": body.preferred_language,
        "registered_at": now,
        "embassy_id": embassy_id,
        "owner_subject": None,
        "registered_by": registered_by,
        "registered_by_role": by_role,
    }
    # Every part's columns as when left empty (this sets the columns' order), then those
    # of the parts given, in place.
    values.update(_ALL_EMPTY)
    for key, empty in _MUTABLE_EMPTY:
        values[key] = _fresh(empty)
    for name in OPTIONAL_PARTS:
        value = getattr(body, name)
        if value is not None:
            values.update(profile_columns({name: value}, country=country))
    values.update(
        {
            "registration_consent_method": consent_method,
            "registration_consent_reference": consent_reference,
            "last_confirmed_at": now,
            "updated_at": now,
            "version": 1,
            "idempotency_key": None,
            "request_digest": None,
        }
    )
    return values


def history_line(values: Mapping[str, Any]) -> tuple[str, str]:
    """The "registered" history line of a members row: the fields given (comma-separated)
    and their values as JSON text (as records.change_row keeps them)."""
    record = view_of(values)
    given = given_at_registration(record)
    # One encoding of the raw values: the JSON of each value is that of history_value's
    # (which only turns them into JSON types and drops document numbers).
    return ",".join(given), json_text(  # field names hold no comma
        {f: history_value(f, record) if f == "documents" else record[f] for f in given}
    )


def registered_events(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, bytes]]:
    """The ``registry.member.registered`` events of members rows, as ``(key, JSON)``:
    ``registered_event(row).model_dump_json()`` (no consents). The batch's event data is
    validated against the contract at once (in pydantic's core: a third of what a model
    per event costs), then each one serialised as it is."""
    data = [registered_data(r) for r in rows]
    _REGISTERED.validate_python(data)
    return [(str(r["id"]), to_json(d)) for r, d in zip(rows, data, strict=True)]


def registered_data(values: Mapping[str, Any]) -> dict[str, Any]:
    """The data of ``registered_event(values)`` (no consents), as the model dumps it: its
    fields in order, every default present; the parts given as their snapshot models."""
    city = values.get("city_name")
    availability = values.get("availability") or {}
    profile: dict[str, Any] = {
        "given_name": values["given_name"],
        "family_name": values["family_name"],
        "date_of_birth": values["date_of_birth"],
        "sex": values.get("sex") or "unspecified",
        "email": values["email"],
        "phone": values["phone"],
        "preferred_language": values["preferred_language"],
        "country_of_residence": values["country_of_residence"],
        "city": None
        if city is None
        else City(
            name=city,
            geonames_id=values.get("city_geonames_id"),
            latitude=values.get("city_latitude"),
            longitude=values.get("city_longitude"),
        ),
        "embassy_id": values["embassy_id"],
        "arrival_year": values.get("arrival_year"),
        "residence_status": values.get("residence_status"),
        "languages": list(values.get("languages") or []),
    }
    for name, part in _SNAPSHOT_PARTS:
        profile[name] = [part(**p) for p in values.get(name) or []]
    profile["availability"] = (
        _DEFAULT_AVAILABILITY
        if availability == _EMPTY_PARTS["availability"]["availability"]
        else AvailabilitySnapshot(**availability)
    )
    profile["consents"] = []
    profile["last_confirmed_at"] = values.get("last_confirmed_at")
    profile["identity"] = None  # nobody verified an imported person's identity yet
    return {
        "member_id": values["id"],
        "given_name": values["given_name"],
        "family_name": values["family_name"],
        "date_of_birth": values["date_of_birth"],
        "email": values["email"],
        "phone": values["phone"],
        "country_of_residence": values["country_of_residence"],
        "preferred_language": values["preferred_language"],
        "registered_at": values["registered_at"],
        "profile": profile,
    }


class AuditJson:
    """The JSON of the audit events of one batch: one event made and serialised by its
    model, then each entry's ``audit_id`` and ``record_id`` put in place of the model's
    (all the other fields are the batch's)."""

    _AUDIT, _RECORD = UUID(int=1), UUID(int=2)

    def __init__(self, **shared: Any) -> None:
        self._shared = shared
        text = RegistryAuditRecordedV1(
            audit_id=self._AUDIT, record_id=self._RECORD, **shared
        ).model_dump_json()
        self._parts = split_around(text, f'"{self._AUDIT}"', f'"{self._RECORD}"')

    def __call__(self, audit_id: UUID, record_id: UUID) -> bytes:
        if self._parts is None:  # a shared value that looks like one of the ids: the model
            event = RegistryAuditRecordedV1(audit_id=audit_id, record_id=record_id, **self._shared)
            return event.model_dump_json().encode()
        head, middle, tail = self._parts
        return f'{head}"{audit_id}"{middle}"{record_id}"{tail}'.encode()
