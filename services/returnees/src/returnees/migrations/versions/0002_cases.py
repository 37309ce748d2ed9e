"""cases: returnees' cases (intake, needs, plan, closure, sealed sensitive fields) and
their 3, 6 and 12 month follow-ups

Revision ID: 0002_cases
Revises: 0001
Create Date: 2026-12-08 00:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_cases"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=True),
        sa.Column("returnee_subject", sa.Text(), nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("application_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("assigned_to", sa.Text(), nullable=True),
        sa.Column("opened_by", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("expected_arrival", sa.Date(), nullable=True),
        sa.Column("return_date", sa.Date(), nullable=True),
        sa.Column("country_from", sa.String(length=2), nullable=True),
        sa.Column("reason", sa.String(length=24), nullable=True),
        sa.Column(
            "needs",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "milestones",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("outcome", sa.String(length=24), nullable=True),
        sa.Column("outcome_notes", sa.Text(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sensitive", sa.LargeBinary(), nullable=True),
        sa.Column("sealed_subject", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("application_id"),
    )
    op.create_index("cases_member_idx", "cases", ["member_id"], unique=False)
    op.create_index("cases_assigned_idx", "cases", ["assigned_to", "status"], unique=False)
    op.create_table(
        "case_follow_ups",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("months", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("done_on", sa.Date(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.Text(), nullable=True),
        sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("case_id", "months"),
    )
    op.create_index(
        "case_follow_ups_due_idx",
        "case_follow_ups",
        ["due_on"],
        unique=False,
        postgresql_where=sa.text("done_on IS NULL AND overdue_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("case_follow_ups_due_idx", table_name="case_follow_ups")
    op.drop_table("case_follow_ups")
    op.drop_index("cases_assigned_idx", table_name="cases")
    op.drop_index("cases_member_idx", table_name="cases")
    op.drop_table("cases")
