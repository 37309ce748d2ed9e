"""Identity verification (issue 17): ``identity_verifications``, the checks officers
recorded (document numbers sealed), and ``members.identity_checks``, their summary the
record's level is derived from.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "members",
        sa.Column(
            "identity_checks",
            postgresql.JSONB(),
            nullable=True,
            comment="Per level, the identity check valid longest (registry.identity).",
        ),
    )
    op.create_table(
        "identity_verifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        # No ON DELETE CASCADE: erasure and merge steps remove or move the rows.
        sa.Column("member_id", sa.Uuid(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("document_type", sa.Text(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("number_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("document_expires_on", sa.Date(), nullable=False),
        sa.Column("seen_on", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("embassy_id", sa.Text(), nullable=False),
        sa.Column("verified_by", sa.Text(), nullable=False),
        sa.Column("verified_by_role", sa.Text(), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("request_digest", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "level IN ('document_checked', 'in_person')", name="identity_level_known"
        ),
        sa.CheckConstraint(
            "method IN ('document_in_person', 'document_upload')", name="identity_method_known"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "verified_by", "idempotency_key", name="identity_verifications_idempotency"
        ),
    )
    op.create_index(
        "identity_verifications_member_idx",
        "identity_verifications",
        ["member_id", "verified_at"],
    )


def downgrade() -> None:
    op.drop_index("identity_verifications_member_idx", table_name="identity_verifications")
    op.drop_table("identity_verifications")
    op.drop_column("members", "identity_checks")
