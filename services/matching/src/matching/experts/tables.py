"""The experts read model: what the ranking reads of consenting members, fed only by
registry events (``matching.experts.projection``)."""

from __future__ import annotations

from typing import get_args

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR

from diaspora_events.contracts.matching import NeedType
from matching.tables import metadata

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
