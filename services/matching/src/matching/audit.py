"""The matching service's audit trail: staff reads of personal data, keyed by member id.

Entries go to the service's own append-only ``audit_log`` table in the transaction
of the read, and out as ``matching.audit.recorded`` through the outbox.
"""

from __future__ import annotations

from diaspora_events.contracts import MatchingAuditRecordedV1
from diaspora_events.outbox import OutboxWriter
from diaspora_identity.audit import AuditEntry, AuditTrail
from matching.adapters.orm import audit_log


def audit_event(entry: AuditEntry) -> MatchingAuditRecordedV1:
    return MatchingAuditRecordedV1(
        audit_id=entry.audit_id,
        occurred_at=entry.occurred_at,
        actor_subject=entry.actor_subject,
        actor_roles=entry.actor_roles,
        actor_client=entry.actor_client,
        actor_is_service=entry.actor_is_service,
        action=entry.action,
        resource=entry.resource,
        record_id=entry.record_id,
        fields=entry.fields,
        client_address=entry.client_address,
        request_id=entry.request_id,
        trace_id=entry.trace_id,
    )


def audit_trail(outbox: OutboxWriter) -> AuditTrail:
    """The trail writing to this service's ``audit_log`` and outbox."""
    return AuditTrail(audit_log, outbox, audit_event)
