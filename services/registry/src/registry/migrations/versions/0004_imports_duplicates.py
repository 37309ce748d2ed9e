"""bulk imports (jobs, error reports) and duplicate detection (match keys, review cases)

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-29 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # similarity() on name keys (duplicate detection).
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")

    op.create_table(
        "member_match_keys",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("embassy_id", sa.Text(), nullable=False),
        sa.Column("name_key", sa.Text(), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=False),
        sa.Column("phone", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("member_id"),
    )
    op.create_index("member_match_keys_birth_idx", "member_match_keys", ["date_of_birth"])
    op.create_index("member_match_keys_phone_idx", "member_match_keys", ["phone"])
    op.create_index("member_match_keys_email_idx", "member_match_keys", ["email"])

    op.create_table(
        "duplicate_cases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("match_id", sa.Uuid(), nullable=False),
        sa.Column("embassy_id", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("reasons", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("import_job_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.Text(), server_default="open", nullable=False),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.Text(), nullable=True),
        sa.Column("survivor_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'merged', 'dismissed')", name="duplicate_cases_status"
        ),
        sa.CheckConstraint("source IN ('registration', 'import')", name="duplicate_cases_source"),
        sa.CheckConstraint("member_id <> match_id", name="duplicate_cases_two_records"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "duplicate_cases_queue_idx", "duplicate_cases", ["embassy_id", "status", "flagged_at"]
    )
    op.create_index("duplicate_cases_member_idx", "duplicate_cases", ["member_id"])
    op.create_index("duplicate_cases_match_idx", "duplicate_cases", ["match_id"])

    op.create_table(
        "import_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_by_roles", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("embassies", sa.ARRAY(sa.Text()), nullable=True),
        sa.Column("filename", sa.Text(), nullable=True),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("encoding", sa.Text(), nullable=True),
        sa.Column("delimiter", sa.Text(), nullable=True),
        sa.Column("mode", sa.Text(), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("consent_method", sa.Text(), nullable=False),
        sa.Column("consent_reference", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="queued", nullable=False),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("blank_rows", sa.Integer(), server_default="0", nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("processed_rows", sa.Integer(), server_default="0", nullable=False),
        sa.Column("accepted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rejected", sa.Integer(), server_default="0", nullable=False),
        sa.Column("duplicates", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rejected_batches", sa.Integer(), server_default="0", nullable=False),
        sa.Column("ignored_columns", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("request_digest", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')", name="import_jobs_status"
        ),
        sa.CheckConstraint("mode IN ('all_or_nothing', 'partial')", name="import_jobs_mode"),
        sa.CheckConstraint(
            "consent_method IN ('signed_form', 'in_person')", name="import_jobs_consent_method"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "import_jobs_pending_idx",
        "import_jobs",
        ["created_at"],
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.create_index(
        "import_jobs_idempotency_idx",
        "import_jobs",
        ["created_by", "idempotency_key"],
        unique=True,
    )

    op.create_table(
        "import_errors",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("column_name", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["import_jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("import_errors_job_idx", "import_errors", ["job_id", "row_number", "id"])


def downgrade() -> None:
    op.drop_table("import_errors")
    op.drop_table("import_jobs")
    op.drop_table("duplicate_cases")
    op.drop_table("member_match_keys")
