"""Campaigns and their frozen audiences."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Identity,
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
from sqlalchemy.dialects.postgresql import JSONB

from notifications.tables import metadata

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text, nullable=False),
    Column("template", Text, nullable=False),
    Column("variables", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("segment", JSONB, nullable=False),
    # Messages per second this campaign may hand to the channels.
    Column("rate_per_second", Integer, nullable=False),
    # draft -> scheduled -> sending -> completed | cancelled
    Column("status", String(16), nullable=False, server_default="draft"),
    Column("send_at", DateTime(timezone=True)),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("audience", Integer),
    Column("idempotency_key", Text, unique=True),
    Index("campaigns_due_idx", "send_at", postgresql_where=text("status = 'scheduled'")),
)

# The campaign's audience, frozen when the send starts: one row per person, so a
# restarted worker continues where it stopped and nobody is handed over twice.
campaign_recipients = Table(
    "campaign_recipients",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("campaign_id", Uuid, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("recipient_id", Uuid),
    # pending -> queued (a delivery exists) | skipped (no usable channel)
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("delivery_id", Uuid),
    UniqueConstraint("campaign_id", "recipient_id", name="campaign_recipients_once"),
    Index(
        "campaign_recipients_pending_idx",
        "campaign_id",
        "id",
        postgresql_where=text("status = 'pending'"),
    ),
)
