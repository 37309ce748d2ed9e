"""Audit trail: every staff read or change of a person's data, in the owning service's database.

Each entry says who (subject, roles, client, service account or not), what
(action, resource, record id, which fields), when, from where (client address
as seen behind the gateway) and under which request (request id, trace id).
Entries are written in the same transaction as the read or change they record
(no audit, no data) and published as an audit event through the service's
outbox. The table is append-only: a trigger refuses UPDATE, DELETE and TRUNCATE
whoever the database user is (see :func:`append_only_ddl`, run by migrations).

Each entry also commits to the one before it (a hash chain computed by the database:
:mod:`diaspora_service.audit_chain`, checked by ``diaspora-ops audit-verify``), and the
services' runtime database role may only INSERT and SELECT it
(:mod:`diaspora_service.db_roles`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import uuid_utils.compat as uuid_compat
from fastapi import Request
from opentelemetry import trace
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Identity,
    Index,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
)
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.contracts.audit import AuditRecorded
from diaspora_events.contracts.base import Event
from diaspora_events.outbox import OutboxWriter
from diaspora_identity.policy import Decision

# The append-only and chain DDL live with the migration helpers (diaspora_service), which
# create every service's audit log; named here too for the older services' migrations.
from diaspora_service.audit_chain import append_only_ddl as append_only_ddl
from diaspora_service.audit_chain import chain_columns
from diaspora_service.audit_chain import chain_ddl as chain_ddl
from diaspora_service.audit_chain import drop_append_only_ddl as drop_append_only_ddl
from diaspora_service.audit_chain import drop_chain_ddl as drop_chain_ddl

AuditEvent = TypeVar("AuditEvent", bound=AuditRecorded)


def audit_table(metadata: MetaData, name: str = "audit_log", *, chained: bool = False) -> Table:
    """The audit table, added to a service's own metadata (and so its migrations).

    ``chained``: the table has the hash chain's columns (a migration ran
    :func:`chain_ddl` on it)."""
    return Table(
        name,
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("audit_id", Uuid, nullable=False, unique=True),
        Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("actor_subject", Text, nullable=False),
        Column("actor_roles", ARRAY(Text), nullable=False),
        Column("actor_client", Text),
        Column("actor_is_service", Boolean, nullable=False),
        Column("action", Text, nullable=False),
        Column("resource", Text, nullable=False),
        Column("record_id", Uuid, nullable=False),
        Column("fields", ARRAY(Text), nullable=False),
        Column("client_address", Text),
        Column("request_id", Text),
        Column("trace_id", Text),
        Index(f"{name}_record_idx", "record_id", "occurred_at"),
        *(chain_columns() if chained else ()),
    )


@dataclass(frozen=True)
class AccessContext:
    """Where a request comes from, as the service sees it."""

    client_address: str | None = None
    request_id: str | None = None
    trace_id: str | None = None

    @classmethod
    def of(cls, request: Request) -> AccessContext:
        # Behind the gateway uvicorn takes the client address from X-Forwarded-For
        # (trusted only from --forwarded-allow-ips, loopback by default).
        client = request.client.host if request.client else None
        request_id = getattr(request.state, "request_id", None) or request.headers.get(
            "x-request-id"
        )
        span = trace.get_current_span().get_span_context()
        trace_id = format(span.trace_id, "032x") if span.is_valid else None
        return cls(client_address=client, request_id=request_id, trace_id=trace_id)


@dataclass(frozen=True)
class AuditEntry:
    audit_id: UUID
    occurred_at: datetime
    actor_subject: str
    actor_roles: list[str]
    actor_client: str | None
    actor_is_service: bool
    action: str
    resource: str
    record_id: UUID
    fields: list[str]
    client_address: str | None
    request_id: str | None
    trace_id: str | None
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {
            "audit_id": self.audit_id,
            "occurred_at": self.occurred_at,
            "actor_subject": self.actor_subject,
            "actor_roles": self.actor_roles,
            "actor_client": self.actor_client,
            "actor_is_service": self.actor_is_service,
            "action": self.action,
            "resource": self.resource,
            "record_id": self.record_id,
            "fields": self.fields,
            "client_address": self.client_address,
            "request_id": self.request_id,
            "trace_id": self.trace_id,
        }


EventFactory = Callable[[AuditEntry], Event]


class AuditTrail:
    """Writes audit entries and their events inside the caller's transaction."""

    def __init__(self, table: Table, outbox: OutboxWriter, event: EventFactory) -> None:
        self._table = table
        self._outbox = outbox
        self._event = event

    async def record(
        self,
        session: AsyncSession,
        decision: Decision,
        context: AccessContext,
        accesses: Sequence[tuple[UUID, Sequence[str]]],
        *,
        action: str | None = None,
    ) -> list[AuditEntry]:
        """Record that the caller accessed these records (record id, fields)."""
        if not accesses:
            return []
        principal = decision.principal
        now = datetime.now(UTC)
        entries = [
            AuditEntry(
                audit_id=uuid_compat.uuid7(),
                occurred_at=now,
                actor_subject=principal.subject,
                actor_roles=decision.roles,
                actor_client=principal.client_id,
                actor_is_service=principal.is_service,
                action=action or decision.action,
                resource=decision.resource,
                record_id=record_id,
                fields=sorted(fields),
                client_address=context.client_address,
                request_id=context.request_id,
                trace_id=context.trace_id,
            )
            for record_id, fields in accesses
        ]
        await session.execute(self._table.insert(), [e.row() for e in entries])
        events = [self._event(entry) for entry in entries]
        if all(e.aggregate_id() == str(a.record_id) for e, a in zip(events, entries, strict=True)):
            # One insert for them all (a list, an export, a bulk import): same rows, same subject.
            await self._outbox.add_many(session, events)
        else:
            for event, entry in zip(events, entries, strict=True):
                await self._outbox.add(session, event, subject=str(entry.record_id))
        return entries

    async def record_personal_reads(
        self,
        session: AsyncSession,
        decision: Decision,
        context: AccessContext,
        rows: Sequence[Mapping[str, Any]],
        views: Sequence[Mapping[str, Any]],
        *,
        person: str = "member_id",
    ) -> list[AuditEntry]:
        """Record a read of ``rows`` answered as ``views`` (one view per row): one entry
        per row whose person (the ``person`` column: a member id) someone else received
        personal fields of, naming every field of its view. Rows without a person, views
        without a personal field and the person's own rows leave no entry."""
        personal = decision.policy.personal_fields
        accesses = [
            (row[person], sorted(view))
            for row, view in zip(rows, views, strict=True)
            if row[person] is not None and personal & set(view) and not decision.is_own(row)
        ]
        return await self.record(session, decision, context, accesses)


def audit_event_factory(contract: type[AuditEvent]) -> Callable[[AuditEntry], AuditEvent]:
    """The event a service publishes for each entry: its own subclass of
    :class:`~diaspora_events.contracts.audit.AuditRecorded`, whose fields are the entry's."""
    names = tuple(AuditRecorded.model_fields)

    def event(entry: AuditEntry) -> AuditEvent:
        return contract(**{name: getattr(entry, name) for name in names})

    return event
