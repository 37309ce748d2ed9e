"""Registering the valid rows of an import batch: members, history, events, audit, duplicates.

Each row is registered as an officer's assisted registration is
(:func:`registry.members.registration.register_member`): the same members row
(:func:`registry.members.columns.registration_columns`), the same "registered" line in
the member's history, the same ``registry.member.registered`` event through the
outbox and an audit entry naming who imported it; only in bulk and with
duplicate detection over the whole batch.

The rows are written with PostgreSQL COPY (:mod:`registry.bulk`) on the
session's connection, in the batch's transaction: plain tuples, each JSONB value
encoded once, no per-row parameter processing. What the tables hold is what the
one-by-one path writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import uuid_utils.compat as uuid_compat
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.contracts import MemberRegisteredV1, RegistryAuditRecordedV1
from diaspora_identity.audit import AccessContext
from diaspora_identity.policy import Decision
from registry.bulk import copy_rows, json_text
from registry.duplicates.detection import flag_new_members
from registry.imports.rows import (
    MEMBER_JSON,
    AuditJson,
    history_line,
    member_columns,
    registered_events,
)
from registry.imports.validation import ValidRow
from registry.members.records import MEMBER_FIELDS
from registry.members.schemas import RegistrationRequest
from registry.members.tables import member_changes, members
from registry.resources import Registry
from registry.tables import audit_log

# The "registered" history lines of a batch (as records.change_row builds them: no old
# values, version 1), one per element of the arrays.
_HISTORY_LINES = text(
    f"""
    INSERT INTO {member_changes.name}
        (member_id, changed_at, action, actor_role, actor_subject, fields, old_values,
         new_values, version, request_id)
    SELECT line.member_id, CAST(:at AS timestamptz), 'registered', line.role,
           CAST(:by AS text), string_to_array(line.fields, ','), '{{}}'::jsonb,
           CAST(line.new_values AS jsonb), 1, CAST(:request_id AS text)
      FROM unnest(CAST(:ids AS uuid[]), CAST(:roles AS text[]), CAST(:fields AS text[]),
                  CAST(:new_values AS text[])) AS line(member_id, role, fields, new_values)
    """  # noqa: S608 (table names from the metadata; values are parameters)
)
# Audit entries naming who imported each member, as AuditTrail.record writes them: one per
# element of the arrays, the rest the same for every entry of the batch.
_AUDIT_ENTRIES = text(
    f"""
    INSERT INTO {audit_log.name}
        (audit_id, occurred_at, actor_subject, actor_roles, actor_client, actor_is_service,
         action, resource, record_id, fields, client_address, request_id, trace_id)
    SELECT entry.audit_id, CAST(:occurred_at AS timestamptz), CAST(:actor_subject AS text),
           CAST(:actor_roles AS text[]), CAST(:actor_client AS text),
           CAST(:actor_is_service AS boolean), CAST(:action AS text),
           CAST(:resource AS text), entry.record_id, CAST(:fields AS text[]),
           CAST(:client_address AS text), CAST(:request_id AS text), CAST(:trace_id AS text)
      FROM unnest(CAST(:audit_ids AS uuid[]), CAST(:record_ids AS uuid[]))
           AS entry(audit_id, record_id)
    """  # noqa: S608
)
_ALL_FIELDS = sorted(MEMBER_FIELDS)


def registration_schema() -> type[BaseModel]:
    """The model validating ``POST /members`` bodies."""
    return RegistrationRequest


@dataclass(frozen=True)
class PreparedRows:
    """What a batch's valid rows write, built before its transaction (:func:`prepare_rows`)."""

    now: datetime
    by: str
    request_id: str | None
    columns: list[dict[str, Any]]
    member_names: tuple[str, ...]
    member_records: list[list[Any]]
    history: dict[str, list[Any]]
    registered: list[tuple[str, bytes]]
    audit: dict[str, Any]
    audit_events: list[tuple[str, bytes]]


# prepare_rows lets the event loop run every so many rows: the previous batch's statements
# progress meanwhile (each of their round trips waits at most that long).
_PAUSE_EVERY = 25


async def prepare_rows(
    *,
    decision: Decision,
    context: AccessContext,
    rows: Sequence[ValidRow],
    consent_method: str,
    consent_reference: str | None,
) -> PreparedRows | None:
    """The members rows, history lines, events and audit entries of valid rows (None for
    none): CPU work only, pausing now and then so that it can run while the previous
    batch is being written (the import runner does so)."""
    if not rows:
        return None
    by = decision.principal.subject
    now = datetime.now(UTC)
    roles: dict[str, str] = {}
    columns: list[dict[str, Any]] = []
    changes: list[tuple[UUID, str, str, str]] = []
    for n, row in enumerate(rows, 1):
        role = roles.get(row.embassy_id)
        if role is None:
            role = decision.reaching({"embassy_id": row.embassy_id})[0].role.value
            roles[row.embassy_id] = role
        # The members row registration_columns makes of the row's command, built directly
        # (registry.imports.rows: same values, no model per empty part).
        values = member_columns(
            row.body,
            member_id=uuid_compat.uuid7(),
            embassy_id=row.embassy_id,
            registered_by=by,
            by_role=role,
            consent_method=consent_method,
            consent_reference=consent_reference,
            now=now,
        )
        columns.append(values)
        # The "registered" history line (as records.change_row builds it: no old values).
        changes.append((values["id"], role, *history_line(values)))
        if n % _PAUSE_EVERY == 0:
            await asyncio.sleep(0)
    names = tuple(columns[0])
    encoded = [i for i, n in enumerate(names) if n in MEMBER_JSON]
    records: list[list[Any]] = []
    for v in columns:
        record = [v[n] for n in names]
        for i in encoded:
            if record[i] is not None:
                record[i] = json_text(record[i])
        records.append(record)
    await asyncio.sleep(0)
    ids, line_roles, fields, new_values = (list(c) for c in zip(*changes, strict=True))
    # The registration events' JSON built from the rows (validated against the contract
    # for the whole batch at once).
    registered = registered_events(columns)
    await asyncio.sleep(0)
    # Audit entries naming who imported each member (as AuditTrail.record writes them):
    # what AuditEntry and audit_event would hold, the same for the whole batch but the ids.
    principal = decision.principal
    shared = {
        "occurred_at": now,
        "actor_subject": principal.subject,
        "actor_roles": decision.roles,
        "actor_client": principal.client_id,
        "actor_is_service": principal.is_service,
        "action": decision.action,
        "resource": decision.resource,
        "fields": _ALL_FIELDS,
        "client_address": context.client_address,
        "request_id": context.request_id,
        "trace_id": context.trace_id,
    }
    audit_ids = [uuid_compat.uuid7() for _ in columns]
    audit_json = AuditJson(**shared)
    return PreparedRows(
        now=now,
        by=by,
        request_id=context.request_id,
        columns=columns,
        member_names=names,
        member_records=records,
        history={"ids": ids, "roles": line_roles, "fields": fields, "new_values": new_values},
        registered=registered,
        audit={"audit_ids": audit_ids, "record_ids": ids, **shared},
        audit_events=[(str(m), audit_json(a, m)) for a, m in zip(audit_ids, ids, strict=True)],
    )


async def write_rows(
    session: AsyncSession,
    *,
    registry: Registry,
    prepared: PreparedRows | None,
    import_job_id: UUID,
) -> int:
    """Write prepared rows in the caller's transaction; returns how many were flagged as
    likely duplicates (of existing members or of each other)."""
    if prepared is None:
        return 0
    await copy_rows(session, members, prepared.member_names, prepared.member_records)
    # History lines and audit entries: what varies per row as arrays, the rest once
    # (a COPY would encode the same long lists of field names on every row).
    await session.execute(
        _HISTORY_LINES,
        {
            **prepared.history,
            "at": prepared.now,
            "by": prepared.by,
            "request_id": prepared.request_id,
        },
    )
    await registry.outbox.copy_encoded(session, MemberRegisteredV1, prepared.registered)
    await session.execute(_AUDIT_ENTRIES, prepared.audit)
    await registry.outbox.copy_encoded(session, RegistryAuditRecordedV1, prepared.audit_events)
    cases = await flag_new_members(
        session,
        registry.outbox,
        prepared.columns,
        source="import",
        threshold=registry.settings.duplicate_threshold,
        import_job_id=import_job_id,
    )
    return len({c.member_id for c in cases})
