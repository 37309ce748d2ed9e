"""experts: an index on the education level, and no more trigram index (the ranking's
threshold retrieval, issue 5)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 20:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("experts_max_isced_level_idx", "experts", ["max_isced_level"])
    op.drop_index("experts_search_text_idx", table_name="experts")


def downgrade() -> None:
    op.create_index(
        "experts_search_text_idx",
        "experts",
        ["search_text"],
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    op.drop_index("experts_max_isced_level_idx", table_name="experts")
