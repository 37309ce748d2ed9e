"""indexes of the case worker's dashboard (bench/returnees.py, docs/benchmarks.md)

- ``cases_worklist_idx``: a case worker's cases in the order of ``GET /cases?assigned=me``
  (newest first), so the first page is read off the index instead of sorting all the
  worker's cases (thousands for the busiest).
- ``referrals_escalated_open_idx``: the cell's escalated open referrals (``GET
  /referrals?escalated=true&status=referred&status=acknowledged``) in the list's order;
  partial, so it holds only those few rows and the count reads nothing else.

Revision ID: 0007_dashboard_indexes
Revises: 0006_case_prefecture
Create Date: 2026-12-08 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_dashboard_indexes"
down_revision: str | None = "0006_case_prefecture"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ESCALATED_OPEN = sa.text(
    "status IN ('referred', 'acknowledged') AND "
    "(acknowledge_escalated_at IS NOT NULL OR complete_escalated_at IS NOT NULL)"
)


def upgrade() -> None:
    op.create_index("cases_worklist_idx", "cases", ["assigned_to", sa.text("opened_at DESC"), "id"])
    op.create_index(
        "referrals_escalated_open_idx",
        "referrals",
        ["acknowledge_by", "referred_at", "id"],
        postgresql_where=ESCALATED_OPEN,
    )


def downgrade() -> None:
    op.drop_index("referrals_escalated_open_idx", table_name="referrals")
    op.drop_index("cases_worklist_idx", table_name="cases")
