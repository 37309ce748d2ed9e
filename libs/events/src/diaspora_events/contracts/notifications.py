"""Events published by the notifications service."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from diaspora_events.contracts.base import Event, contract
from diaspora_events.topics import NOTIFICATIONS_DELIVERIES

Channel = Literal["email", "sms", "inbox"]


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
