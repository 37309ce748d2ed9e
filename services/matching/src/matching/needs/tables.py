"""The needs' table: what national institutions ask of the diaspora."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from matching.tables import metadata

# A national institution's need, posted by a ministry coordinator.
needs = Table(
    "needs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("title", Text, nullable=False),
    # teaching | medical | volunteering | co_development | technical_assistance
    # (the registry's availability vocabulary, so that the filter is an equality).
    Column("type", String(32), nullable=False),
    Column("institution", Text, nullable=False),
    Column("institution_kind", String(32), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    # ISCO-08 codes (unit groups, or coarser groups) of the occupations sought.
    Column("occupations", ARRAY(Text), nullable=False, server_default="{}"),
    # [{"esco_uri": str | null, "label": str}]
    Column("skills", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("min_isced_level", Integer),
    # ISO 639-1 codes every proposed expert must speak.
    Column("languages", ARRAY(Text), nullable=False, server_default="{}"),
    Column("starts_on", Date),
    Column("ends_on", Date),
    Column("duration_days", Integer),
    # ISO 3166-2:TG region code and the prefecture's code within it.
    Column("region", Text, nullable=False),
    Column("prefecture", Text),
    # on_site | remote | hybrid
    Column("work_mode", String(16), nullable=False, server_default="on_site"),
    Column("experts_wanted", Integer, nullable=False, server_default="1"),
    Column("funding_amount", Numeric(14, 2)),
    Column("funding_currency", String(3)),
    Column("funding_source", Text),
    # draft -> open -> matching -> proposals_sent -> filled | cancelled | expired
    Column("status", String(16), nullable=False, server_default="draft"),
    Column("close_reason", Text),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("closed_at", DateTime(timezone=True)),
    # Optimistic concurrency: bumped by each change (ETag / If-Match).
    Column("revision", Integer, nullable=False, server_default="1"),
    # Idempotency-Key of the POST that created it, per caller, and a digest of the body.
    Column("idempotency_key", Text),
    Column("request_digest", Text),
    Index("needs_status_idx", "status", "created_at"),
    Index("needs_idempotency_idx", "created_by", "idempotency_key", unique=True),
)
