"""issued credentials (consular card, e-visa: signed tokens), and the applicant's date of
birth in the applicants read model (printed on and signed into a consular card)

Revision ID: 0003_credentials
Revises: 0002_appointments
Create Date: 2026-12-07 21:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_credentials"
down_revision: str | None = "0002_appointments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("applicants", sa.Column("date_of_birth", sa.Date(), nullable=True))
    op.create_table(
        "credentials",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("application_id", sa.Uuid(), nullable=False),
        sa.Column("credential_type", sa.Text(), nullable=False),
        sa.Column("holder_id", sa.Uuid(), nullable=True),
        sa.Column("holder_subject", sa.Text(), nullable=False),
        sa.Column("embassy_id", sa.Text(), nullable=False),
        sa.Column("kid", sa.Text(), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Text(), nullable=True),
        sa.Column("revocation_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["application_id"], ["applications.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("application_id"),
    )
    op.create_index("credentials_holder_idx", "credentials", ["holder_id"])
    op.create_index("credentials_subject_idx", "credentials", ["holder_subject"])
    op.create_index(
        "credentials_revoked_idx",
        "credentials",
        ["revoked_at"],
        postgresql_where=sa.text("revoked_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("credentials_revoked_idx", table_name="credentials")
    op.drop_index("credentials_subject_idx", table_name="credentials")
    op.drop_index("credentials_holder_idx", table_name="credentials")
    op.drop_table("credentials")
    op.drop_column("applicants", "date_of_birth")
