"""The notifications service's tables (its own database)."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)

from diaspora_events.consumer import inbox_table
from diaspora_events.outbox import outbox_table

metadata = MetaData()

# The contact details this service keeps of each member, fed by registry events.
recipients = Table(
    "recipients",
    metadata,
    Column("member_id", Uuid, primary_key=True),
    Column("given_name", Text, nullable=False),
    Column("family_name", Text, nullable=False),
    Column("email", Text),
    Column("phone", Text),
    Column("language", String(2), nullable=False, server_default="fr"),
    Column("country_of_residence", String(2)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("cause_event_id", Uuid, nullable=False),
    Column(
        "recipient_id", Uuid, ForeignKey("recipients.member_id", ondelete="CASCADE"), nullable=False
    ),
    Column("channel", String(16), nullable=False),
    Column("template", Text, nullable=False),
    Column("language", String(2), nullable=False),
    Column("address", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    # pending -> sent | failed
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    # W3C trace context of the event that caused the delivery: the send continues its trace.
    Column("traceparent", Text),
    # One delivery per (event, recipient, channel): a redelivered event sends nothing twice.
    UniqueConstraint("cause_event_id", "recipient_id", "channel", name="deliveries_once"),
    Index("deliveries_due_idx", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    Index("deliveries_recipient_idx", "recipient_id", "created_at"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
