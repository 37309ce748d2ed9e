"""The register of bilateral labour-migration agreements and their stage history."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from returnees.tables import metadata

agreements = Table(
    "agreements",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("country", String(2), nullable=False),
    Column("title", Text, nullable=False),
    Column("stage", String(16), nullable=False),
    # ISCO-08 major groups or sector names the agreement covers.
    Column("sectors", ARRAY(Text), nullable=False),
    # [{"occupation": ..., "per_year": n}]; documents: [{"title", "reference", "date"}].
    Column("quotas", JSONB, nullable=False),
    Column("documents", JSONB, nullable=False),
    Column("signed_on", Date),
    Column("in_force_on", Date),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
    Index("agreements_country_idx", "country"),
)

agreement_stages = Table(
    "agreement_stages",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("agreement_id", Uuid, ForeignKey("agreements.id", ondelete="CASCADE"), nullable=False),
    Column("from_stage", String(16)),
    Column("to_stage", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("by_subject", Text, nullable=False),
    Column("note", Text),
    Index("agreement_stages_agreement_idx", "agreement_id", "id"),
)
