"""Country lists' tables: labour-demand countries with their history, the watchlist with
its history, and the difficulty reports counted per country and category (evidence)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from returnees.tables import metadata

# A country where Togolese workers are in demand (the ministry's list, public once
# published): sectors, occupations (ISCO-08 codes), sources, when it was last reviewed.
labour_demand = Table(
    "labour_demand_countries",
    metadata,
    Column("country", String(2), primary_key=True),
    Column("sectors", ARRAY(Text), nullable=False, server_default="{}"),
    Column("occupations", ARRAY(Text), nullable=False, server_default="{}"),
    # [{"title": ..., "url": ...}]
    Column("sources", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("last_reviewed_on", Date, nullable=False),
    Column("notes", Text),
    Column("published", Boolean, nullable=False, server_default="false"),
    Column("version", Integer, nullable=False),
    Column("updated_by", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Every version of an entry, as it was saved, with who saved it.
labour_demand_history = Table(
    "labour_demand_history",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("country", String(2), nullable=False),
    Column("version", Integer, nullable=False),
    Column("snapshot", JSONB, nullable=False),
    Column("changed_by", Text, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("country", "version", name="labour_demand_history_once"),
)

# A country where migrant workers' rights are reported violated; its advisory (level, FR
# and EN text) is sent when a second reviewer publishes it.
watchlist = Table(
    "watchlist_entries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("country", String(2), nullable=False),
    Column("level", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("title_fr", Text, nullable=False),
    Column("title_en", Text, nullable=False),
    Column("text_fr", Text, nullable=False),
    Column("text_en", Text, nullable=False),
    # The proposer's rationale for the reviewers (not published).
    Column("rationale", Text, nullable=False),
    # What the proposal rests on, frozen when proposed: difficulty reports per category
    # (consular), returnees' cases when that feed exists, and what the analyst cites.
    Column("evidence", JSONB, nullable=False),
    Column("proposed_by", Text, nullable=False),
    Column("proposed_at", DateTime(timezone=True), nullable=False),
    Column("reviewed_by", Text),
    Column("published_at", DateTime(timezone=True)),
    Column("withdrawn_at", DateTime(timezone=True)),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("watchlist_entries_country_idx", "country", "status"),
    # At most one published entry per country: the next one replaces it after withdrawal.
    Index(
        "watchlist_entries_published_once",
        "country",
        unique=True,
        postgresql_where=text("status = 'published'"),
    ),
)

watchlist_history = Table(
    "watchlist_history",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("entry_id", Uuid, ForeignKey("watchlist_entries.id"), nullable=False),
    Column("action", String(16), nullable=False),
    Column("from_status", String(16)),
    Column("to_status", String(16), nullable=False),
    Column("actor", Text, nullable=False),
    Column("reason", Text),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("watchlist_history_entry_idx", "entry_id", "id"),
)

# Difficulty reports filed with the consular service, counted per country where it
# happened and category (from consular.report.filed; each event once: the inbox).
report_counts = Table(
    "difficulty_report_counts",
    metadata,
    Column("country", String(2), nullable=False),
    Column("category", Text, nullable=False),
    Column("reports", Integer, nullable=False),
    Column("last_filed_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("country", "category", name="difficulty_report_counts_pkey"),
)
