"""difficulty reports: the ministry's categories (seeded, versioned), reports, their
messages and history

Revision ID: 0005_reports
Revises: 0004_identity_expiry
Create Date: 2026-12-07 21:45:00.000000
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_reports"
down_revision: str | None = "0004_identity_expiry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SEED_NAMESPACE = uuid.UUID("6f1d2c1e-9a57-4c1b-8f0e-5d0a3c7b2e11")

# The categories of issue 17 (code, French, English, target days), version 1. Fixed here,
# not imported; the ministry edits them through PUT /reports/categories/{code}. The target
# days are placeholders for the ministry to set (detention: the most urgent).
SEED_CATEGORIES: list[tuple[str, str, str, int]] = [
    ("civil_status", "État civil", "Civil status", 30),
    ("documents", "Documents d'identité et de voyage", "Identity and travel documents", 15),
    ("residence", "Séjour et titre de séjour", "Residence and residence permits", 15),
    ("work_rights", "Droit du travail", "Work rights", 15),
    ("detention", "Détention", "Detention", 2),
    ("discrimination", "Discrimination", "Discrimination", 10),
    ("other", "Autre", "Other", 30),
]


def upgrade() -> None:
    op.create_table(
        "report_categories",
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("label_fr", sa.Text(), nullable=False),
        sa.Column("label_en", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("target_days", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), server_default="100", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "report_category_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("label_fr", sa.Text(), nullable=False),
        sa.Column("label_en", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("target_days", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("edited_by", sa.Text(), nullable=True),
        sa.Column(
            "edited_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["code"], ["report_categories.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code", "version", name="report_category_versions_code_version"),
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("reporter_id", sa.Uuid(), nullable=True),
        sa.Column("reporter_subject", sa.Text(), nullable=True),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("country", sa.Text(), nullable=False),
        sa.Column("embassy_id", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "attachments",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("status", sa.Text(), server_default="open", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("filed_by_subject", sa.Text(), nullable=False),
        sa.Column("filed_by_role", sa.Text(), nullable=False),
        sa.Column("consent_method", sa.Text(), nullable=True),
        sa.Column("consent_given_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["category"], ["report_categories.code"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("reports_queue_idx", "reports", ["embassy_id", "status", "due_at"])
    op.create_index("reports_reporter_idx", "reports", ["reporter_id", "created_at"])
    op.create_index("reports_subject_idx", "reports", ["reporter_subject", "created_at"])
    op.create_index(
        "reports_sla_idx",
        "reports",
        ["due_at"],
        postgresql_where=sa.text("escalated_at IS NULL AND status IN ('open', 'in_progress')"),
    )
    op.create_table(
        "report_messages",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("author_side", sa.Text(), nullable=False),
        sa.Column("author_subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("report_messages_report_idx", "report_messages", ["report_id", "id"])
    op.create_table(
        "report_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("from_status", sa.Text(), nullable=True),
        sa.Column("to_status", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor_subject", sa.Text(), nullable=False),
        sa.Column("actor_role", sa.Text(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("report_history_report_idx", "report_history", ["report_id", "id"])

    categories = sa.table(
        "report_categories",
        sa.column("code"),
        sa.column("label_fr"),
        sa.column("label_en"),
        sa.column("target_days"),
        sa.column("position"),
    )
    versions = sa.table(
        "report_category_versions",
        sa.column("id"),
        sa.column("code"),
        sa.column("version"),
        sa.column("label_fr"),
        sa.column("label_en"),
        sa.column("active"),
        sa.column("target_days"),
        sa.column("position"),
    )
    rows = [
        {"code": c, "label_fr": fr, "label_en": en, "target_days": d, "position": (i + 1) * 10}
        for i, (c, fr, en, d) in enumerate(SEED_CATEGORIES)
    ]
    op.bulk_insert(categories, rows)
    op.bulk_insert(
        versions,
        [
            {**r, "id": uuid.uuid5(_SEED_NAMESPACE, f"{r['code']}/1"), "version": 1, "active": True}
            for r in rows
        ],
    )


def downgrade() -> None:
    op.drop_index("report_history_report_idx", table_name="report_history")
    op.drop_table("report_history")
    op.drop_index("report_messages_report_idx", table_name="report_messages")
    op.drop_table("report_messages")
    op.drop_index(
        "reports_sla_idx",
        table_name="reports",
        postgresql_where=sa.text("escalated_at IS NULL AND status IN ('open', 'in_progress')"),
    )
    op.drop_index("reports_subject_idx", table_name="reports")
    op.drop_index("reports_reporter_idx", table_name="reports")
    op.drop_index("reports_queue_idx", table_name="reports")
    op.drop_table("reports")
    op.drop_table("report_category_versions")
    op.drop_table("report_categories")
