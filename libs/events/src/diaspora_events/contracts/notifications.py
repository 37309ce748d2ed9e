"""Events published by the notifications service."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from diaspora_events.contracts.audit import AuditRecorded
from diaspora_events.contracts.base import Event, contract
from diaspora_events.topics import (
    NOTIFICATIONS_AUDIT,
    NOTIFICATIONS_CONTACTS,
    NOTIFICATIONS_DELIVERIES,
)

Channel = Literal["email", "sms", "inbox"]
ContactKind = Literal["email", "phone"]


@contract(
    event_type="notifications.delivery.delivered",
    version=1,
    topic=NOTIFICATIONS_DELIVERIES,
    key="delivery_id",
    description="A notification reached the recipient's channel (accepted by the mail server).",
)
class DeliveryDeliveredV1(Event):
    delivery_id: UUID
    recipient_id: UUID
    channel: Channel
    template: str
    cause_event_id: UUID
    delivered_at: datetime
    attempts: int


@contract(
    event_type="notifications.delivery.failed",
    version=1,
    topic=NOTIFICATIONS_DELIVERIES,
    key="delivery_id",
    description="A notification could not be delivered on a channel and will not be retried.",
)
class DeliveryFailedV1(Event):
    delivery_id: UUID
    recipient_id: UUID
    channel: Channel
    template: str
    cause_event_id: UUID
    failed_at: datetime
    attempts: int
    reason: str


@contract(
    event_type="notifications.audit.recorded",
    version=1,
    topic=NOTIFICATIONS_AUDIT,
    key="record_id",
    subject="record_id",
    description=(
        "Someone other than the person read a delivery log or an inbox held by "
        "notifications (record id = member id), or an administrator saved or previewed "
        "a template (resource template, record id = the template version's id)."
    ),
)
class NotificationsAuditRecordedV1(AuditRecorded):
    pass


@contract(
    event_type="notifications.contact.verified",
    version=1,
    topic=NOTIFICATIONS_CONTACTS,
    key="member_id",
    description=(
        "A member proved they own their email address (link) or phone number (code): "
        "notifications now sends them messages there. Carries the kind, not the value."
    ),
)
class ContactVerifiedV1(Event):
    member_id: UUID
    kind: ContactKind
    verified_at: datetime
