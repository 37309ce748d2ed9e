"""Difficulty reports: the categories (and every version of them), the reports, their
messages and the history of their status."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from consular.tables import metadata

# The ministry's list of categories as it stands (one row per code).
report_categories = Table(
    "report_categories",
    metadata,
    Column("code", Text, primary_key=True),
    Column("label_fr", Text, nullable=False),
    Column("label_en", Text, nullable=False),
    # Inactive: not offered to new reports; old reports keep it.
    Column("active", Boolean, nullable=False, server_default=text("true")),
    # The SLA: days the embassy has to resolve a report of this category.
    Column("target_days", Integer, nullable=False),
    Column("position", Integer, nullable=False, server_default="100"),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Every version ever published (never changed): who edited what, when.
report_category_versions = Table(
    "report_category_versions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("code", Text, ForeignKey("report_categories.code"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("label_fr", Text, nullable=False),
    Column("label_en", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("target_days", Integer, nullable=False),
    Column("position", Integer, nullable=False),
    # The coordinator's subject (NULL: shipped with the platform).
    Column("edited_by", Text),
    Column("edited_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("code", "version", name="report_category_versions_code_version"),
)

reports = Table(
    "reports",
    metadata,
    Column("id", Uuid, primary_key=True),
    # The person the difficulty is about: their registry member id (NULL: a citizen's
    # account without a registry record) and their account's subject (NULL: filed on
    # their behalf by a focal point; they see it through their member id).
    Column("reporter_id", Uuid),
    Column("reporter_subject", Text),
    Column("category", Text, ForeignKey("report_categories.code"), nullable=False),
    # Where the difficulty happened (ISO 3166-1 alpha-2) and the embassy covering it.
    Column("country", Text, nullable=False),
    Column("embassy_id", Text, nullable=False),
    Column("description", Text, nullable=False),
    # References to documents (not stored here yet: uploads are wired later).
    Column("attachments", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("status", Text, nullable=False, server_default="open"),
    Column("version", Integer, nullable=False, server_default="1"),
    # Who filed it: the reporter, or a focal point on their behalf with their consent.
    Column("filed_by_subject", Text, nullable=False),
    Column("filed_by_role", Text, nullable=False),
    Column("consent_method", Text),
    Column("consent_given_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("escalated_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    # The reporter was erased: kept pseudonymised for the counts (consular.erasure).
    Column("erased_at", DateTime(timezone=True)),
    Index("reports_queue_idx", "embassy_id", "status", "due_at"),
    Index("reports_reporter_idx", "reporter_id", "created_at"),
    Index("reports_subject_idx", "reporter_subject", "created_at"),
    Index(
        "reports_sla_idx",
        "due_at",
        postgresql_where=text("escalated_at IS NULL AND status IN ('open', 'in_progress')"),
    ),
)

report_messages = Table(
    "report_messages",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("report_id", Uuid, ForeignKey("reports.id", ondelete="CASCADE"), nullable=False),
    # reporter or staff; the author's subject is shown to staff only.
    Column("author_side", Text, nullable=False),
    Column("author_subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("report_messages_report_idx", "report_id", "id"),
)

report_history = Table(
    "report_history",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("report_id", Uuid, ForeignKey("reports.id", ondelete="CASCADE"), nullable=False),
    Column("action", Text, nullable=False),
    Column("from_status", Text),
    Column("to_status", Text, nullable=False),
    Column("reason", Text),
    Column("actor_subject", Text, nullable=False),
    Column("actor_role", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("report_history_report_idx", "report_id", "id"),
)
