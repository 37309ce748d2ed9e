"""Recipients follow the registry's member snapshots: snapshot time, newsletters consent
time, and the members erased or merged away (never brought back).

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("recipients", sa.Column("source_time", sa.DateTime(timezone=True)))
    op.add_column("recipients", sa.Column("newsletter_consent_at", sa.DateTime(timezone=True)))
    op.create_table(
        "removed_members",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("survivor_id", sa.Uuid(), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("member_id"),
    )


def downgrade() -> None:
    op.drop_table("removed_members")
    op.drop_column("recipients", "newsletter_consent_at")
    op.drop_column("recipients", "source_time")
