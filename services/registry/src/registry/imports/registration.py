"""Registering the valid rows of an import batch: members, history, events, audit, duplicates.

Each row is registered as an officer's assisted registration is
(:func:`registry.service.register_member`): the same members row
(:func:`registry.service.registration_columns`), the same "registered" line in
the member's history, the same ``registry.member.registered`` event through the
outbox and an audit entry naming who imported it; only in bulk (one insert per
table per batch) and with duplicate detection over the whole batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import uuid_utils.compat as uuid_compat
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_identity.audit import AccessContext
from diaspora_identity.policy import Decision
from registry.adapters.orm import member_changes, members
from registry.bootstrap import Registry
from registry.duplicates.detection import flag_new_members
from registry.imports.validation import ValidRow
from registry.records import MEMBER_FIELDS, change_row, view_of
from registry.service import _GIVEN_AT_REGISTRATION, registered_event, registration_columns


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
    columns: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    for row in rows:
        role = decision.reaching({"embassy_id": row.embassy_id})[0].role.value
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
        record = view_of(values)
        changes.append(
            change_row(
                member_id=values["id"],
                action="registered",
                actor_role=role,
                actor_subject=by,
                fields=[f for f in MEMBER_FIELDS if f in _GIVEN_AT_REGISTRATION and record.get(f)],
                old={},
                new=record,
                version=1,
                request_id=context.request_id,
                at=now,
            )
        )
    await session.execute(members.insert(), columns)
    await session.execute(member_changes.insert(), changes)
    await registry.outbox.add_many(session, [registered_event(c) for c in columns])
    await registry.audit.record(
        session, decision, context, [(c["id"], MEMBER_FIELDS) for c in columns]
    )
    cases = await flag_new_members(
        session, registry.outbox, columns, source="import", import_job_id=import_job_id
    )
    return len({c.member_id for c in cases})
