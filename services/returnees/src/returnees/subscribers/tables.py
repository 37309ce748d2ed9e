"""Awareness subscriptions (people in Togo, not diaspora members)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Index, String, Table, Text, Uuid, text
from sqlalchemy.dialects.postgresql import ARRAY

from returnees.tables import metadata

subscriptions = Table(
    "awareness_subscriptions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("channel", String(8), nullable=False),
    # The email address or phone number (E.164); NULL once unsubscribed.
    Column("address", Text),
    # SHA-256 of channel and address: rate limits and superseding outlive the address.
    Column("address_hash", Text, nullable=False),
    Column("language", String(2), nullable=False),
    Column("awareness", Boolean, nullable=False),
    Column("countries", ARRAY(Text), nullable=False, server_default="{}"),
    # The consent: which text (version), when it was accepted.
    Column("consent_text_version", Text, nullable=False),
    Column("consented_at", DateTime(timezone=True), nullable=False),
    # pending -> active -> unsubscribed (pending ones expire unconfirmed)
    Column("status", String(16), nullable=False),
    # SHA-256 of the single-use confirmation secret; NULL once used.
    Column("confirm_token_hash", Text, unique=True),
    Column("confirm_expires_at", DateTime(timezone=True), nullable=False),
    # SHA-256 of the client address that asked (per-client rate limit), not the address.
    Column("client_hash", Text, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("confirmed_at", DateTime(timezone=True)),
    Column("unsubscribed_at", DateTime(timezone=True)),
    Index("awareness_subscriptions_address_idx", "address_hash", "requested_at"),
    Index("awareness_subscriptions_client_idx", "client_hash", "requested_at"),
    Index(
        "awareness_subscriptions_active_idx",
        "address_hash",
        postgresql_where=text("status = 'active'"),
    ),
)
