"""The matching service's audit trail: staff reads of personal data, keyed by member id.

Entries go to the service's own append-only ``audit_log`` table in the transaction
of the read, and out as ``matching.audit.recorded`` through the outbox.
"""

from __future__ import annotations

from diaspora_events.contracts import MatchingAuditRecordedV1
from diaspora_events.outbox import OutboxWriter
from diaspora_identity.audit import AuditTrail, audit_event_factory
from matching.adapters.orm import audit_log

# The event published for each entry (its fields are the entry's).
audit_event = audit_event_factory(MatchingAuditRecordedV1)


def audit_trail(outbox: OutboxWriter) -> AuditTrail:
    """The trail writing to this service's ``audit_log`` and outbox."""
    return AuditTrail(audit_log, outbox, audit_event)
