"""The matching service's tables (its own database).

Two families: what the service owns (needs; proposals, missions and projects in
later revisions) and its read model of experts, fed only by registry events.
"""

from __future__ import annotations

from typing import get_args

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR

from diaspora_events.consumer import inbox_table
from diaspora_events.contracts.matching import NeedType
from diaspora_events.outbox import outbox_table
from diaspora_identity.audit import audit_table

metadata = MetaData()

# ----------------------------------------------------------------------------- needs

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

# ------------------------------------------------------------------ experts read model

# Only members who consent to be contacted for missions have a row here; everything
# else the registry knows about a person stays in the registry. Columns are what the
# ranking reads, precomputed when the event is applied.
experts = Table(
    "experts",
    metadata,
    Column("member_id", Uuid, primary_key=True),
    Column("given_name", Text, nullable=False),
    Column("family_name", Text, nullable=False),
    Column("preferred_language", String(2), nullable=False),
    Column("country_of_residence", String(2), nullable=False),
    Column("embassy_id", Text, nullable=False),
    # ISO 639-1 codes the person speaks (their preferred language included).
    Column("languages", ARRAY(Text), nullable=False, server_default="{}"),
    # ISCO-08 codes of declared occupations and of past or current jobs ...
    Column("occupations", ARRAY(Text), nullable=False, server_default="{}"),
    Column("experience_occupations", ARRAY(Text), nullable=False, server_default="{}"),
    # ... and the groups they fall in, over both: unit (4 digits), minor (3), sub-major (2).
    Column("isco_units", ARRAY(Text), nullable=False, server_default="{}"),
    Column("isco_minors", ARRAY(Text), nullable=False, server_default="{}"),
    Column("isco_submajors", ARRAY(Text), nullable=False, server_default="{}"),
    # {isco_code: years} over the person's jobs (ongoing ones counted to the event's year).
    Column("experience_years", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("skill_uris", ARRAY(Text), nullable=False, server_default="{}"),
    Column("skill_labels", ARRAY(Text), nullable=False, server_default="{}"),
    Column("max_isced_level", Integer),
    Column("mission_types", ARRAY(Text), nullable=False, server_default="{}"),
    Column("available_from", Date),
    Column("available_until", Date),
    Column("remote", Boolean, nullable=False, server_default="false"),
    # What the ranking shows a coordinator: titles of occupations, jobs, education.
    Column("summary", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # Free text of skills, occupation and job titles, fields of study ...
    Column("search_text", Text, nullable=False, server_default=""),
    # ... and its full-text document (french and english configurations, unaccented).
    Column("search", TSVECTOR, nullable=False, server_default=text("''::tsvector")),
    Column("source_time", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The rebuild (matching.experts.rebuild) copies these index definitions from the
    # catalogue onto its fresh table, then gives the copies these names after the swap.
    # The ranking's GIN indexes cover, each, the experts willing to do one type of need,
    # or to do it remotely: every ranking query names the type, and remote needs say
    # so (matching.ranking.scoring).
    *(
        Index(
            f"experts_{column}_{need_type}{suffix}_idx",
            column,
            postgresql_using="gin",
            postgresql_where=text(f"'{need_type}' = ANY (mission_types){condition}"),
        )
        for column in ("isco_units", "isco_minors", "isco_submajors", "skill_uris", "search")
        for need_type in get_args(NeedType)
        for suffix, condition in (("", ""), ("_remote", " AND remote"))
    ),
    # The ranking finds the few with a master's or a doctorate through it.
    Index("experts_max_isced_level_idx", "max_isced_level"),
)

# The time of the latest registry event applied per member, whatever it said (consent
# withdrawn, erased, merged). A snapshot older than that is ignored, so a replayed or
# late event can never bring back someone who withdrew or was erased. Holds ids only.
expert_sources = Table(
    "expert_sources",
    metadata,
    Column("member_id", Uuid, primary_key=True),
    Column("source_time", DateTime(timezone=True), nullable=False),
    # candidate | not_consenting | erased | merged
    Column("state", String(16), nullable=False),
)

# -------------------------------------------------------------------------- plumbing

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
audit_log = audit_table(metadata, chained=True)
