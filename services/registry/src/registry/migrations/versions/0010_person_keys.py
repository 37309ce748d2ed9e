"""Persons' data keys for crypto-shredding (registry.keys): ``person_keys``.

One row per person (or other subject of sealed event fields): the data key wrapped by
the key-encryption key, or a tombstone once the person is erased. Members erased before
this revision get their tombstone now, so that no key is ever created for them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "person_keys",
        sa.Column("subject_id", sa.Uuid(), nullable=False, comment="Member (or other subject) id."),
        sa.Column(
            "wrapped_dek",
            sa.LargeBinary(),
            nullable=True,
            comment="The DEK wrapped by the KEK; NULL once destroyed.",
        ),
        sa.Column(
            "kek_id", sa.Text(), nullable=True, comment="Which key-encryption key wrapped it."
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "destroyed_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="Erasure: the key is gone.",
        ),
        sa.CheckConstraint(
            "(wrapped_dek IS NULL) = (destroyed_at IS NOT NULL)"
            " AND (wrapped_dek IS NULL) = (kek_id IS NULL)",
            name="person_keys_live_or_destroyed",
        ),
        sa.PrimaryKeyConstraint("subject_id"),
    )
    op.execute(
        "INSERT INTO person_keys (subject_id, destroyed_at) "
        "SELECT member_id, erased_at FROM erased_members ON CONFLICT DO NOTHING"
    )


def downgrade() -> None:
    op.drop_table("person_keys")
