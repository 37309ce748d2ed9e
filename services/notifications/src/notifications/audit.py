"""The notifications service's audit trail.

Entries go to the service's own append-only ``audit_log`` table (its definition and
trigger are diaspora_identity.audit's, shared with registry and matching) in the
transaction of the read, and out as ``notifications.audit.recorded`` through the outbox
on topic ``notifications.audit``:

- a staff read of a person's delivery log or inbox: resource ``delivery`` or
  ``inbox_message``, record id = the member id (the event's key, as in the other
  services, so the person's access log finds it);
- an administrator's template save or preview: resource ``notification_template``,
  record id = the template version's id (saved, or previewed; a draft's preview uses
  the latest saved version of that key and language, or ``template_record_id`` of the
  key and language when there is none). There is no member: the event is keyed by
  that id, and no person's access log shows it.
"""

from __future__ import annotations

import uuid
from uuid import UUID

from diaspora_events.contracts import NotificationsAuditRecordedV1
from diaspora_events.outbox import OutboxWriter
from diaspora_identity.audit import AuditTrail, audit_event_factory
from notifications.tables import audit_log

_TEMPLATE_NAMESPACE = uuid.UUID("0b7f6c2a-3e55-4b8e-a0c4-7d1f9e2b6a31")
TEMPLATE_FIELDS = ("subject", "body", "sms", "variables")
DELIVERY_FIELDS = ("subject", "last_error")
INBOX_FIELDS = ("title", "body")


def template_record_id(key: str, language: str) -> UUID:
    """The record id of a template that has no saved version yet (a draft's preview)."""
    return uuid.uuid5(_TEMPLATE_NAMESPACE, f"{key}/{language}")


# The event published for each entry (its fields are the entry's).
audit_event = audit_event_factory(NotificationsAuditRecordedV1)


def audit_trail(outbox: OutboxWriter) -> AuditTrail:
    """The trail writing to this service's ``audit_log`` and outbox."""
    return AuditTrail(audit_log, outbox, audit_event)
