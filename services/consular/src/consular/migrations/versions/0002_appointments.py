"""appointments: embassies' slot templates (versioned), per-slot seat counters (capacity
enforced by a CHECK and a conditional UPDATE), appointments (one active per application)

Revision ID: 0002_appointments
Revises: 0001
Create Date: 2026-12-07 21:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_appointments"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slot_templates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("embassy_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.Text(), nullable=False),
        sa.Column("slot_minutes", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("weekly_hours", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "closures",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("slot_minutes > 0 AND capacity > 0 AND horizon_days > 0"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("embassy_id", "version", name="slot_templates_embassy_version"),
    )
    op.create_table(
        "slot_seats",
        sa.Column("embassy_id", sa.Text(), nullable=False),
        sa.Column("slot_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("booked", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint("booked >= 0 AND booked <= capacity", name="slot_seats_capacity"),
        sa.PrimaryKeyConstraint("embassy_id", "slot_start", name="slot_seats_pkey"),
    )
    op.create_table(
        "appointments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("application_id", sa.Uuid(), nullable=False),
        sa.Column("applicant_id", sa.Uuid(), nullable=True),
        sa.Column("applicant_subject", sa.Text(), nullable=False),
        sa.Column("embassy_id", sa.Text(), nullable=False),
        sa.Column("slot_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("slot_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("timezone", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="booked", nullable=False),
        sa.Column("booked_by", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("reminder_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('booked', 'cancelled')", name="appointments_status"),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "appointments_one_active_idx",
        "appointments",
        ["application_id"],
        unique=True,
        postgresql_where=sa.text("status = 'booked'"),
    )
    op.create_index("appointments_slot_idx", "appointments", ["embassy_id", "slot_start"])
    op.create_index(
        "appointments_reminder_idx",
        "appointments",
        ["slot_start"],
        postgresql_where=sa.text("status = 'booked' AND reminder_sent_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("appointments_reminder_idx", table_name="appointments")
    op.drop_index("appointments_slot_idx", table_name="appointments")
    op.drop_index("appointments_one_active_idx", table_name="appointments")
    op.drop_table("appointments")
    op.drop_table("slot_seats")
    op.drop_table("slot_templates")
