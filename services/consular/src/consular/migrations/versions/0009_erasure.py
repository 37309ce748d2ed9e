"""erasure: decided applications and difficulty reports kept pseudonymised after the
person's erasure are marked, for the retention job

Revision ID: 0009_erasure
Revises: 0008_queue_indexes
Create Date: 2026-12-08 00:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_erasure"
down_revision: str | None = "0008_queue_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("applications", sa.Column("erased_at", sa.DateTime(timezone=True)))
    op.add_column("reports", sa.Column("erased_at", sa.DateTime(timezone=True)))
    op.create_index(
        "applications_erased_idx",
        "applications",
        ["erased_at"],
        postgresql_where=sa.text("erased_at IS NOT NULL"),
    )
    op.create_index(
        "reports_erased_idx",
        "reports",
        ["erased_at"],
        postgresql_where=sa.text("erased_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("reports_erased_idx", table_name="reports")
    op.drop_index("applications_erased_idx", table_name="applications")
    op.drop_column("reports", "erased_at")
    op.drop_column("applications", "erased_at")
