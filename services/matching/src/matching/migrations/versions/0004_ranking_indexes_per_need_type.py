"""experts: the ranking's GIN indexes per need type, and per need type for remote work
(partial indexes), instead of over every expert (issue 5)

Every ranking query keeps only the experts willing to do the need's type of mission
(about 38% of them for each type), and for a remote need only those who work remotely
(about 40%). Indexes restricted to those experts hand the scan that many fewer rows to
fetch and then reject; the full indexes served nothing else.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 06:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The need types of this revision (diaspora_events.contracts.matching.NeedType).
NEED_TYPES = ("teaching", "medical", "volunteering", "co_development", "technical_assistance")
COLUMNS = ("isco_units", "isco_minors", "isco_submajors", "skill_uris", "search")


def _partial() -> list[tuple[str, str, str]]:
    """(name, column, condition) of each partial index."""
    found = []
    for column in COLUMNS:
        for need_type in NEED_TYPES:
            willing = f"'{need_type}' = ANY (mission_types)"
            found.append((f"experts_{column}_{need_type}_idx", column, willing))
            found.append(
                (f"experts_{column}_{need_type}_remote_idx", column, f"{willing} AND remote")
            )
    return found


def upgrade() -> None:
    for column in COLUMNS:
        op.drop_index(f"experts_{column}_idx", table_name="experts", postgresql_using="gin")
    for name, column, condition in _partial():
        op.create_index(
            name, "experts", [column], postgresql_using="gin", postgresql_where=condition
        )


def downgrade() -> None:
    for name, _column, _condition in _partial():
        op.drop_index(name, table_name="experts")
    for column in COLUMNS:
        op.create_index(f"experts_{column}_idx", "experts", [column], postgresql_using="gin")
