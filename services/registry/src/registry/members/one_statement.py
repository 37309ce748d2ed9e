"""A self-registration as one SQL statement: one round trip, atomic on its own.

The usual registration is a transaction of about eight round trips (BEGIN, the
member, consents, history line, outbox event, match keys, duplicate query,
COMMIT). When a person registers themselves, gives no document numbers, and the
duplicate query (run first, reading only) finds no likely duplicate, everything
the transaction would write is written by one statement instead: data-modifying
CTEs inserting the member row, the consents, the "registered" history line, the
match keys and the outbox row, and the outbox notification. PostgreSQL runs a
statement atomically, so it is all written or nothing is, as with the
transaction; the unique constraints (owner, Idempotency-Key) refuse it the same
way. Registrations that need more (an officer's, audited; document numbers,
encrypted; a likely duplicate, which opens a review case) take the transaction.

The rows are the same as the transaction writes: the same columns and values,
built by the same functions (:func:`registry.members.columns.registration_columns`,
:func:`registry.members.records.view_of`, :meth:`OutboxWriter.row`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from diaspora_events.outbox import OutboxWriter, notify_channel
from registry.bulk import json_text
from registry.duplicates.tables import member_match_keys
from registry.members.tables import member_changes, member_consents, members

# JSONB columns of members: their values go as JSON text (the driver's codec takes text).
_MEMBER_JSON = frozenset(
    {"postal_address", "occupations", "skills", "education", "experience", "availability"}
)
_EXTRA = (
    "consent_purposes",
    "consent_granted",
    "consent_method",
    "actor_role",
    "actor_subject",
    "history_fields",
    "history_values",
    "request_id",
    "name_key",
    "email_key",
    "event_id",
    "topic",
    "event_key",
    "event_type",
    "headers",
    "value",
)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@cache
def _statement(member_columns: tuple[str, ...], outbox_table: str, channel: str) -> str:
    """The statement for members rows with these columns (built once per column set)."""
    position = {name: f"${i}" for i, name in enumerate(member_columns + _EXTRA, start=1)}

    def p(name: str) -> str:
        return position[name]

    member_id, at = p("id"), p("registered_at")
    outbox = _quoted(outbox_table)
    # Table and column names come from the code (metadata, registration_columns), never
    # from input; every value is a parameter.
    return f"""
WITH member AS (
    INSERT INTO {members.name} ({", ".join(member_columns)})
    VALUES ({", ".join(p(c) for c in member_columns)})
),
consents AS (
    INSERT INTO {member_consents.name}
        (member_id, purpose, granted, at, method, actor_role, actor_subject)
    SELECT CAST({member_id} AS uuid), c.purpose, c.granted, CAST({at} AS timestamptz),
           CAST({p("consent_method")} AS text), CAST({p("actor_role")} AS text),
           CAST({p("actor_subject")} AS text)
      FROM unnest(CAST({p("consent_purposes")} AS text[]),
                  CAST({p("consent_granted")} AS boolean[])) AS c(purpose, granted)
),
history AS (
    INSERT INTO {member_changes.name}
        (member_id, changed_at, action, actor_role, actor_subject, fields, old_values,
         new_values, version, request_id)
    VALUES ({member_id}, {at}, 'registered', {p("actor_role")}, {p("actor_subject")},
            {p("history_fields")}, '{{}}'::jsonb, {p("history_values")}, 1, {p("request_id")})
),
match_keys AS (
    INSERT INTO {member_match_keys.name}
        (member_id, embassy_id, name_key, date_of_birth, phone, email)
    VALUES ({member_id}, {p("embassy_id")}, {p("name_key")}, {p("date_of_birth")},
            {p("phone")}, {p("email_key")})
),
event AS (
    INSERT INTO {outbox} (event_id, topic, key, event_type, headers, value)
    VALUES ({p("event_id")}, {p("topic")}, {p("event_key")}, {p("event_type")},
            {p("headers")}, {p("value")})
    RETURNING id
)
SELECT pg_notify({_literal(channel)}, '') FROM event
"""  # noqa: S608


async def register_in_one_statement(
    connection: AsyncConnection,
    *,
    outbox: OutboxWriter,
    columns: Mapping[str, Any],
    consents: Sequence[Mapping[str, Any]],
    actor_role: str,
    actor_subject: str | None,
    consent_method: str,
    history_fields: Sequence[str],
    history_values: Mapping[str, Any],
    request_id: str | None,
    name_key: str,
    email_key: str,
    event_row: Mapping[str, Any],
) -> None:
    """Write a registration with one statement on ``connection`` (in autocommit mode)."""
    names = tuple(columns)
    parameters: list[Any] = [
        json_text(columns[n]) if n in _MEMBER_JSON and columns[n] is not None else columns[n]
        for n in names
    ]
    parameters += [
        [c["purpose"] for c in consents],
        [c["granted"] for c in consents],
        consent_method,
        actor_role,
        actor_subject,
        list(history_fields),
        json_text(history_values),
        request_id,
        name_key,
        email_key,
        event_row["event_id"],
        event_row["topic"],
        event_row["key"],
        event_row["event_type"],
        json_text(event_row["headers"]),
        event_row["value"],
    ]
    statement = _statement(names, outbox.table.name, notify_channel(outbox.table))
    await connection.exec_driver_sql(statement, tuple(parameters))
