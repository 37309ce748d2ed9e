"""The shape every service's audit event shares (each service registers its own type)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from diaspora_events.contracts.base import Event, personal


class AuditRecorded(Event):
    """A staff member or system read or changed a person's data (one record, one access).

    Not a contract by itself: each service registers its own subclass on its own topic.
    """

    audit_id: UUID
    occurred_at: datetime
    actor_subject: str = personal(description="Subject (user id at the identity provider).")
    actor_roles: list[str]
    actor_client: str | None = None
    actor_is_service: bool
    action: str
    resource: str
    record_id: UUID
    fields: list[str]
    client_address: str | None = personal(default=None, description="Client IP address.")
    request_id: str | None = None
    trace_id: str | None = None
