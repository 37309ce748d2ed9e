"""Email and phone verified before anything else is sent to them: verification sends
(only the secret's hash), verified times, the welcome that follows the verification.

Existing recipients' contacts start unverified (fail closed): nothing but the inbox
reaches them until the person asks for a verification (POST /me/contacts/{kind}/resend);
they were welcomed already (welcomed_at set).

Revision ID: 0005b
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005b"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for column in ("email_verified_at", "phone_verified_at", "registered_at", "welcomed_at"):
        op.add_column("recipients", sa.Column(column, sa.DateTime(timezone=True)))
    op.execute("UPDATE recipients SET welcomed_at = updated_at")
    op.create_table(
        "contact_verifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("secret_hash", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("address_hash", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("secret_hash"),
    )
    op.create_index(
        "contact_verifications_member_idx",
        "contact_verifications",
        ["member_id", "kind", "created_at"],
    )
    op.create_index(
        "contact_verifications_address_idx",
        "contact_verifications",
        ["address_hash", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("contact_verifications_address_idx", table_name="contact_verifications")
    op.drop_index("contact_verifications_member_idx", table_name="contact_verifications")
    op.drop_table("contact_verifications")
    for column in ("welcomed_at", "registered_at", "phone_verified_at", "email_verified_at"):
        op.drop_column("recipients", column)
