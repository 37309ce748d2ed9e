"""country lists (labour-demand countries, watchlist, difficulty report counts) and
awareness subscriptions

Revision ID: 0005_countries
Revises: 0004_referrals
Create Date: 2026-12-08 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision: str = "0005_countries"
down_revision: str | None = "0004_referrals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.func.now()


def upgrade() -> None:
    op.create_table(
        "labour_demand_countries",
        sa.Column("country", sa.String(2), primary_key=True),
        sa.Column("sectors", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("occupations", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("sources", JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("last_reviewed_on", sa.Date(), nullable=False),
        sa.Column("notes", sa.Text()),
        sa.Column("published", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "labour_demand_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("snapshot", JSONB(), nullable=False),
        sa.Column("changed_by", sa.Text(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("country", "version", name="labour_demand_history_once"),
    )
    op.create_table(
        "watchlist_entries",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("title_fr", sa.Text(), nullable=False),
        sa.Column("title_en", sa.Text(), nullable=False),
        sa.Column("text_fr", sa.Text(), nullable=False),
        sa.Column("text_en", sa.Text(), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("evidence", JSONB(), nullable=False),
        sa.Column("proposed_by", sa.Text(), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_by", sa.Text()),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("watchlist_entries_country_idx", "watchlist_entries", ["country", "status"])
    op.create_index(
        "watchlist_entries_published_once",
        "watchlist_entries",
        ["country"],
        unique=True,
        postgresql_where=sa.text("status = 'published'"),
    )
    op.create_table(
        "watchlist_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        sa.Column("entry_id", sa.Uuid(), sa.ForeignKey("watchlist_entries.id"), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("watchlist_history_entry_idx", "watchlist_history", ["entry_id", "id"])
    op.create_table(
        "difficulty_report_counts",
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("reports", sa.Integer(), nullable=False),
        sa.Column("last_filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("country", "category", name="difficulty_report_counts_pkey"),
    )
    op.create_table(
        "awareness_subscriptions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("address", sa.Text()),
        sa.Column("address_hash", sa.Text(), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("awareness", sa.Boolean(), nullable=False),
        sa.Column("countries", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("consent_text_version", sa.Text(), nullable=False),
        sa.Column("consented_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("confirm_token_hash", sa.Text(), unique=True),
        sa.Column("confirm_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_hash", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True)),
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "awareness_subscriptions_address_idx",
        "awareness_subscriptions",
        ["address_hash", "requested_at"],
    )
    op.create_index(
        "awareness_subscriptions_client_idx",
        "awareness_subscriptions",
        ["client_hash", "requested_at"],
    )
    op.create_index(
        "awareness_subscriptions_active_idx",
        "awareness_subscriptions",
        ["address_hash"],
        postgresql_where=sa.text("status = 'active'"),
    )


def downgrade() -> None:
    op.drop_table("awareness_subscriptions")
    op.drop_table("difficulty_report_counts")
    op.drop_table("watchlist_history")
    op.drop_table("watchlist_entries")
    op.drop_table("labour_demand_history")
    op.drop_table("labour_demand_countries")
