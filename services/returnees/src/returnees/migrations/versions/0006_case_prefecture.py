"""where the returnee settles: the case's prefecture and region (referrals read them)

Revision ID: 0006_case_prefecture
Revises: 0005_countries
Create Date: 2026-12-08 01:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_case_prefecture"
down_revision: str | None = "0005_countries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("prefecture", sa.String(40)))
    op.add_column("cases", sa.Column("region", sa.String(8)))
    # The watchlist's evidence counts cases per country returned from and reason.
    op.create_index("cases_country_reason_idx", "cases", ["country_from", "reason"])


def downgrade() -> None:
    op.drop_index("cases_country_reason_idx", table_name="cases")
    op.drop_column("cases", "region")
    op.drop_column("cases", "prefecture")
