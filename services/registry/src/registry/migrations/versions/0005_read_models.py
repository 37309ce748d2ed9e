"""read models: statistics, search, update campaign marks

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-28 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Trusted extensions (a database owner may create them); the embedded server has them.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS fuzzystrmatch")
    op.create_table(
        "stats_members",
        sa.Column("member_id", sa.Uuid(), primary_key=True),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column("embassy_id", sa.Text(), nullable=False),
        sa.Column("country", sa.Text(), nullable=False),
        sa.Column("city_key", sa.Text(), nullable=False),
        sa.Column("isco_major", sa.Text(), nullable=False),
        sa.Column("isco_submajor", sa.Text(), nullable=False),
        sa.Column("isced", sa.Text(), nullable=False),
        sa.Column("sex", sa.Text(), nullable=False),
        sa.Column("birth_year", sa.SmallInteger(), nullable=False),
        sa.Column("skills", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("languages", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "stats_counts",
        sa.Column("dimension", sa.Text(), nullable=False),
        sa.Column("embassy_id", sa.Text(), nullable=False),
        sa.Column("country", sa.Text(), nullable=False),
        sa.Column("isco_major", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "dimension", "country", "isco_major", "embassy_id", "key", name="stats_counts_pkey"
        ),
    )
    op.create_table(
        "stats_cities",
        sa.Column("city_key", sa.Text(), primary_key=True),
        sa.Column("country", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("latitude", sa.Float()),
        sa.Column("longitude", sa.Float()),
    )
    op.create_table(
        "stats_labels",
        sa.Column("dimension", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("dimension", "key", name="stats_labels_pkey"),
    )
    op.create_table(
        "read_model_removed",
        sa.Column("member_id", sa.Uuid(), primary_key=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "removed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "member_search",
        sa.Column("member_id", sa.Uuid(), primary_key=True),
        sa.Column("embassy_id", sa.Text(), nullable=False),
        sa.Column("country", sa.Text(), nullable=False),
        sa.Column("name_key", sa.Text(), nullable=False),
        sa.Column("terms", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("isced", sa.SmallInteger()),
        sa.Column("available_from", sa.Date()),
        sa.Column("available_until", sa.Date()),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
    )
    # fastupdate off: steady query times (no pending list to scan) at some cost per insert.
    op.execute(
        "CREATE INDEX member_search_terms_idx ON member_search USING gin (terms) "
        "WITH (fastupdate = off)"
    )
    op.create_table(
        "name_words",
        sa.Column("word", sa.Text(), primary_key=True),
        sa.Column("members", sa.Integer(), nullable=False),
    )
    op.execute("CREATE INDEX name_words_trgm_idx ON name_words USING gin (word gin_trgm_ops)")
    op.create_table(
        "stale_marks",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "marked_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("member_id", "confirmed_at", name="stale_marks_pkey"),
    )


def downgrade() -> None:
    for table in (
        "stale_marks",
        "name_words",
        "member_search",
        "read_model_removed",
        "stats_labels",
        "stats_cities",
        "stats_counts",
        "stats_members",
    ):
        op.drop_table(table)
