"""payments by reference (receipts numbered per embassy and year) and the hand-over
packages of passport and identity card preparation with the authority's answers

Revision ID: 0007_handover
Revises: 0006_uploads
Create Date: 2026-12-07 23:59:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_handover"
down_revision: str | None = "0006_uploads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "receipt_counters",
        sa.Column("embassy_id", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("embassy_id", "year"),
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("application_id", sa.Uuid(), nullable=True),
        sa.Column("applicant_id", sa.Uuid(), nullable=True),
        sa.Column("applicant_subject", sa.Text(), nullable=False),
        sa.Column("embassy_id", sa.Text(), nullable=False),
        sa.Column("receipt_year", sa.Integer(), nullable=False),
        sa.Column("receipt_sequence", sa.Integer(), nullable=False),
        sa.Column("receipt_number", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("payer_reference", sa.Text(), nullable=False),
        sa.Column("amount", sa.Numeric(14, 2), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("voided_by", sa.Text(), nullable=True),
        sa.Column("void_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "method IN ('cash_at_embassy', 'bank_transfer', 'mobile_money')",
            name="payments_method_check",
        ),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("receipt_number"),
        sa.UniqueConstraint(
            "embassy_id", "receipt_year", "receipt_sequence", name="payments_receipt_sequence_key"
        ),
    )
    op.create_index("payments_application_idx", "payments", ["application_id"])
    op.create_index(
        "payments_one_active_idx",
        "payments",
        ["application_id"],
        unique=True,
        postgresql_where=sa.text("voided_at IS NULL"),
    )
    op.create_table(
        "handovers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("application_id", sa.Uuid(), nullable=False),
        sa.Column("applicant_id", sa.Uuid(), nullable=True),
        sa.Column("applicant_subject", sa.Text(), nullable=False),
        sa.Column("embassy_id", sa.Text(), nullable=False),
        sa.Column("service_type", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("kid", sa.Text(), nullable=False),
        sa.Column("package", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("document_number", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('sent', 'accepted', 'rejected', 'produced')",
            name="handovers_status_check",
        ),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("application_id"),
    )
    op.create_table(
        "handover_answers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("handover_id", sa.Uuid(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("from_status", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("document_number", sa.Text(), nullable=True),
        sa.Column("actor_subject", sa.Text(), nullable=False),
        sa.Column("actor_client", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["handover_id"], ["handovers.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("handover_answers_handover_idx", "handover_answers", ["handover_id", "id"])


def downgrade() -> None:
    op.drop_index("handover_answers_handover_idx", table_name="handover_answers")
    op.drop_table("handover_answers")
    op.drop_table("handovers")
    op.drop_index("payments_one_active_idx", table_name="payments")
    op.drop_index("payments_application_idx", table_name="payments")
    op.drop_table("payments")
    op.drop_table("receipt_counters")
