"""The registry's tables (its own database)."""

from __future__ import annotations

from sqlalchemy import Column, Date, DateTime, Index, MetaData, String, Table, Text, Uuid, func

from diaspora_events.consumer import inbox_table
from diaspora_events.outbox import outbox_table
from diaspora_identity.audit import audit_table

metadata = MetaData()

members = Table(
    "members",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("given_name", Text, nullable=False),
    Column("family_name", Text, nullable=False),
    Column("date_of_birth", Date, nullable=False),
    Column("country_of_residence", String(2), nullable=False),
    Column("email", Text, nullable=False),
    Column("phone", Text, nullable=False),
    Column("preferred_language", String(2), nullable=False, server_default="fr"),
    Column("registered_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Idempotency-Key of the POST that created the member, with a digest of its body.
    Column("idempotency_key", Text, unique=True),
    Column("request_digest", Text),
    # The post whose jurisdiction covers the country of residence (reference data, re-derived
    # at start when the jurisdictions file changes).
    Column("embassy_id", Text, nullable=False),
    # The identity provider's subject of the person, when they registered themselves.
    Column("owner_subject", Text, unique=True),
    # Who filed the registration when it was not the person (assisted registration).
    Column("registered_by", Text),
    Column("registered_by_role", Text),
    Index("members_embassy_idx", "embassy_id", "id"),
    Index("members_country_idx", "country_of_residence", "id"),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
# Every staff read or change of a member's record; append-only (trigger in migration 0002).
audit_log = audit_table(metadata)
