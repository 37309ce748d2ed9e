"""Registering the valid rows of an import batch: members, history, events, audit, duplicates.

Each row is registered as an officer's assisted registration is
(:func:`registry.service.register_member`): the same members row
(:func:`registry.service.registration_columns`), the same "registered" line in
the member's history, the same ``registry.member.registered`` event through the
outbox and an audit entry naming who imported it; only in bulk and with
duplicate detection over the whole batch.

The rows are written with PostgreSQL COPY (:mod:`registry.adapters.bulk`) on the
session's connection, in the batch's transaction: plain tuples, each JSONB value
encoded once, no per-row parameter processing. What the tables hold is what the
one-by-one path writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import uuid_utils.compat as uuid_compat
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_identity.audit import AccessContext, AuditEntry
from diaspora_identity.policy import Decision
from registry.adapters.bulk import copy_rows, json_text
from registry.adapters.orm import audit_log, member_changes, members
from registry.bootstrap import Registry
from registry.duplicates.detection import flag_new_members
from registry.imports.validation import ValidRow
from registry.records import MEMBER_FIELDS, history_value, view_of
from registry.service import (
    _GIVEN_AT_REGISTRATION,
    audit_event,
    registered_event,
    registration_columns,
)

# The members columns a registration fills, in COPY order; JSONB ones are sent as text.
_MEMBER_JSON = frozenset(
    {"postal_address", "occupations", "skills", "education", "experience", "availability"}
)
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
    """The model validating ``POST /members`` bodies (imported late: it lives with the routes)."""
    from registry.entrypoints.http import RegistrationRequest

    return RegistrationRequest


async def register_rows(
    session: AsyncSession,
    *,
    registry: Registry,
    decision: Decision,
    context: AccessContext,
    rows: Sequence[ValidRow],
    import_job_id: UUID,
    consent_method: str,
    consent_reference: str | None,
) -> int:
    """Register the rows in the caller's transaction; returns how many were flagged as
    likely duplicates (of existing members or of each other)."""
    if not rows:
        return 0
    by = decision.principal.subject
    now = datetime.now(UTC)
    roles: dict[str, str] = {}
    columns: list[dict[str, Any]] = []
    changes: list[tuple[UUID, str, str, str]] = []
    for row in rows:
        role = roles.get(row.embassy_id)
        if role is None:
            role = decision.reaching({"embassy_id": row.embassy_id})[0].role.value
            roles[row.embassy_id] = role
        command = row.body.command(None)  # type: ignore[attr-defined]
        values = registration_columns(
            command,
            member_id=uuid_compat.uuid7(),
            embassy_id=row.embassy_id,
            owner_subject=None,
            registered_by=by,
            by_role=role,
            consent_method=consent_method,
            consent_reference=consent_reference,
            digest=None,
            now=now,
        )
        columns.append(values)
        # The "registered" history line (as records.change_row builds it: no old values).
        record = view_of(values)
        given = [f for f in MEMBER_FIELDS if f in _GIVEN_AT_REGISTRATION and record.get(f)]
        changes.append(
            (
                values["id"],
                role,
                ",".join(given),  # field names hold no comma
                json_text({f: history_value(f, record) for f in given}),
            )
        )
    names = tuple(columns[0])
    await copy_rows(
        session,
        members,
        names,
        [
            tuple(
                json_text(v[n]) if n in _MEMBER_JSON and v[n] is not None else v[n] for n in names
            )
            for v in columns
        ],
    )
    # History lines and audit entries: what varies per row as arrays, the rest once
    # (a COPY would encode the same long lists of field names on every row).
    ids, line_roles, fields, new_values = (list(c) for c in zip(*changes, strict=True))
    await session.execute(
        _HISTORY_LINES,
        {
            "ids": ids,
            "roles": line_roles,
            "fields": fields,
            "new_values": new_values,
            "at": now,
            "by": by,
            "request_id": context.request_id,
        },
    )
    await registry.outbox.copy_many(session, [registered_event(c) for c in columns])
    # Audit entries naming who imported each member (as AuditTrail.record writes them).
    principal = decision.principal
    entries = [
        AuditEntry(
            audit_id=uuid_compat.uuid7(),
            occurred_at=now,
            actor_subject=principal.subject,
            actor_roles=decision.roles,
            actor_client=principal.client_id,
            actor_is_service=principal.is_service,
            action=decision.action,
            resource=decision.resource,
            record_id=c["id"],
            fields=_ALL_FIELDS,
            client_address=context.client_address,
            request_id=context.request_id,
            trace_id=context.trace_id,
        )
        for c in columns
    ]
    await session.execute(
        _AUDIT_ENTRIES,
        {
            "audit_ids": [e.audit_id for e in entries],
            "record_ids": [e.record_id for e in entries],
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
        },
    )
    await registry.outbox.copy_many(session, [audit_event(e) for e in entries])
    cases = await flag_new_members(
        session, registry.outbox, columns, source="import", import_job_id=import_job_id
    )
    return len({c.member_id for c in cases})
