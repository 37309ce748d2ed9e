"""Tables of duplicate detection (registry database, migration 0004)."""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Table,
    Text,
    Uuid,
)

from registry.tables import metadata

# What duplicate detection compares, per member: the name key (registry.duplicates.normalise)
# and the exact attributes. Kept here, not in members, so that detection owns its
# normalisation; a member's row goes with the member (cascade) and with its erasure.
member_match_keys = Table(
    "member_match_keys",
    metadata,
    Column("member_id", Uuid, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("embassy_id", Text, nullable=False),
    Column("name_key", Text, nullable=False),
    Column("date_of_birth", Date, nullable=False),
    Column("phone", Text, nullable=False),
    Column("email", Text, nullable=False),
    Index("member_match_keys_birth_idx", "date_of_birth"),
    Index("member_match_keys_phone_idx", "phone"),
    Index("member_match_keys_email_idx", "email"),
)

# A review case: two records that are likely one person. No foreign keys to members: a
# merged case keeps the absorbed record's id as history; erasure deletes a person's cases.
duplicate_cases = Table(
    "duplicate_cases",
    metadata,
    Column("id", Uuid, primary_key=True),
    # The record that was being registered or imported when the match was found ...
    Column("member_id", Uuid, nullable=False),
    # ... and the record it matched.
    Column("match_id", Uuid, nullable=False),
    # The embassy whose officers review it: the one covering the newer record.
    Column("embassy_id", Text, nullable=False),
    Column("score", Float, nullable=False),
    Column("reasons", ARRAY(Text), nullable=False),
    Column("source", Text, nullable=False),
    Column("import_job_id", Uuid),
    Column("status", Text, nullable=False, server_default="open"),
    Column("flagged_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolved_by", Text),
    Column("survivor_id", Uuid),
    CheckConstraint("status IN ('open', 'merged', 'dismissed')", name="duplicate_cases_status"),
    CheckConstraint("source IN ('registration', 'import')", name="duplicate_cases_source"),
    CheckConstraint("member_id <> match_id", name="duplicate_cases_two_records"),
    Index("duplicate_cases_queue_idx", "embassy_id", "status", "flagged_at"),
    Index("duplicate_cases_member_idx", "member_id"),
    Index("duplicate_cases_match_idx", "match_id"),
)
