"""Awareness subscribers: people in Togo (not diaspora members) who asked the returnees
service for migration awareness messages and advisories, as its events tell."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Index, String, Table, Text, Uuid, func
from sqlalchemy.dialects.postgresql import ARRAY

from notifications.tables import metadata

subscribers = Table(
    "subscribers",
    metadata,
    Column("subscriber_id", Uuid, primary_key=True),
    # email or sms (NULL: only ever heard of as unsubscribed).
    Column("channel", String(8)),
    # The email address or phone number; NULL once unsubscribed (the row stays, so that a
    # late or replayed event never brings the person back).
    Column("address", Text),
    Column("language", String(2), nullable=False, server_default="fr"),
    Column("awareness", Boolean, nullable=False, server_default="false"),
    # Advisories of these countries (ISO 3166-1 alpha-2).
    Column("countries", ARRAY(Text), nullable=False, server_default="{}"),
    Column("unsubscribe_link", Text),
    Column("consent_text_version", Text),
    Column("consented_at", DateTime(timezone=True)),
    Column("requested_at", DateTime(timezone=True)),
    # Double opt-in: nothing but the confirmation is sent before this is set.
    Column("confirmed_at", DateTime(timezone=True)),
    Column("unsubscribed_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("subscribers_countries_idx", "countries", postgresql_using="gin"),
)
