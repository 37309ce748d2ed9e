"""Merge the branches grown in parallel from 0002 (member profile, imports and
duplicates, read models, associations) into one head: the next revision has a single
parent, and `alembic current` shows one version.

Revision ID: 0007
Revises: 0003, 0004, 0005, 0006
Create Date: 2026-11-29 06:30:00
"""

from collections.abc import Sequence

revision: str = "0007"
down_revision: str | Sequence[str] | None = ("0003", "0004", "0005", "0006")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to change: the four branches touch different tables."""


def downgrade() -> None:
    """Nothing to undo."""
