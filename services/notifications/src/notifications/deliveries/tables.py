"""The delivery log: one row per message on one channel."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)

from notifications.tables import metadata

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("cause_event_id", Uuid, nullable=False),
    # NULL once the person is erased (the row stays, anonymised, for statistics).
    Column("recipient_id", Uuid),
    Column("channel", String(16), nullable=False),
    Column("template", Text, nullable=False),
    Column("template_version", Integer),
    Column("category", Text, nullable=False, server_default="account"),
    # Legal and safety messages: no opt-out, no quiet hours.
    Column("mandatory", Boolean, nullable=False, server_default="false"),
    Column("language", String(2), nullable=False),
    Column("address", Text),
    Column("subject", Text),
    Column("body", Text),
    Column("sms_text", Text),
    # pending -> sent | failed | cancelled
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    # W3C trace context of the event that caused the delivery: the send continues its trace.
    Column("traceparent", Text),
    Column("campaign_id", Uuid),
    # The delivery this one falls back from (permanent failure) or resends.
    Column("previous_id", Uuid),
    Column("reason", String(16), nullable=False, server_default="event"),
    Column("anonymised_at", DateTime(timezone=True)),
    # One delivery per (event, recipient, channel): a redelivered event sends nothing twice.
    UniqueConstraint("cause_event_id", "recipient_id", "channel", name="deliveries_once"),
    Index(
        "deliveries_due_idx",
        "channel",
        "next_attempt_at",
        postgresql_where=text("status = 'pending'"),
    ),
    Index("deliveries_recipient_idx", "recipient_id", "created_at"),
    Index("deliveries_campaign_idx", "campaign_id", "status"),
)
