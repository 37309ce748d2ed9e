"""The read models' tables (migration 0005), in the registry's own database.

They are fed only by the registry's own events (``registry.members``) through the
``registry-read-models`` consumer of ``registry-worker``; nothing else writes them,
so they can be dropped and rebuilt from the compacted topic.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY

from registry.tables import metadata

# One row per member: the facts statistics count, nothing that names or reaches the person.
stats_members = Table(
    "stats_members",
    metadata,
    Column("member_id", Uuid, primary_key=True),
    # Whether the member is counted (not when they refused statistics, see settings).
    Column("counted", Boolean, nullable=False),
    Column("embassy_id", Text, nullable=False),
    Column("country", Text, nullable=False),
    # GeoNames id as text, or "<country>:<folded name>" for a place the gazetteer lacks.
    Column("city_key", Text, nullable=False),
    Column("isco_major", Text, nullable=False),
    Column("isco_submajor", Text, nullable=False),
    Column("isced", Text, nullable=False),
    Column("sex", Text, nullable=False),
    Column("birth_year", SmallInteger, nullable=False),
    Column("skills", ARRAY(Text), nullable=False),
    Column("languages", ARRAY(Text), nullable=False),
    # The time of the event these facts come from (older events are ignored).
    Column("as_of", DateTime(timezone=True), nullable=False),
)

# Pre-aggregated counts: one row per (dimension, key) and slice. A slice is an embassy
# with either one country or every country ("*"), and either one ISCO major group or
# every group ("*"); the public totals add the embassies' rows up.
stats_counts = Table(
    "stats_counts",
    metadata,
    Column("dimension", Text, nullable=False),
    Column("embassy_id", Text, nullable=False),
    Column("country", Text, nullable=False),
    Column("isco_major", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("members", Integer, nullable=False),
    PrimaryKeyConstraint(
        "dimension", "country", "isco_major", "embassy_id", "key", name="stats_counts_pkey"
    ),
)

# Where each counted city is (from the events' city, else the gazetteer).
stats_cities = Table(
    "stats_cities",
    metadata,
    Column("city_key", Text, primary_key=True),
    Column("country", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("latitude", Float),
    Column("longitude", Float),
)

# Labels of keys that are not reference codes (skills by their label).
stats_labels = Table(
    "stats_labels",
    metadata,
    Column("dimension", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("label", Text, nullable=False),
    PrimaryKeyConstraint("dimension", "key", name="stats_labels_pkey"),
)

# Members erased or merged away: later (redelivered, replayed) events about them are ignored.
read_model_removed = Table(
    "read_model_removed",
    metadata,
    Column("member_id", Uuid, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("removed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Search: one row per member; `terms` holds every searchable attribute as "<kind>:<value>"
# (one GIN index answers name words and filters together), `name_key` the folded name
# for ranking by trigram similarity.
member_search = Table(
    "member_search",
    metadata,
    Column("member_id", Uuid, primary_key=True),
    Column("embassy_id", Text, nullable=False),
    Column("country", Text, nullable=False),
    Column("name_key", Text, nullable=False),
    Column("terms", ARRAY(Text), nullable=False),
    Column("isced", SmallInteger),
    Column("available_from", Date),
    Column("available_until", Date),
    Column("as_of", DateTime(timezone=True), nullable=False),
    Index("member_search_terms_idx", "terms", postgresql_using="gin"),
)

# The words of every member's name, with how many members use them: a typo in a query
# word is matched against this small vocabulary first (pg_trgm, Levenshtein).
name_words = Table(
    "name_words",
    metadata,
    Column("word", Text, primary_key=True),
    Column("members", Integer, nullable=False),
)

# Update campaign: one row per member and staleness period (the confirmation time the
# period starts from), written in the same transaction as the marked-stale event.
stale_marks = Table(
    "stale_marks",
    metadata,
    Column("member_id", Uuid, nullable=False),
    Column("confirmed_at", DateTime(timezone=True), nullable=False),
    Column("marked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("member_id", "confirmed_at", name="stale_marks_pkey"),
)
