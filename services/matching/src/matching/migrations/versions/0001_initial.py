"""initial schema: needs, experts read model, outbox, inbox, audit

Revision ID: 0001
Revises:
Create Date: 2026-11-28 10:38:03.492062
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from diaspora_identity.audit import append_only_ddl, drop_append_only_ddl

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Trigram matching of free-text skills and accent-insensitive full text; the platform's
    # servers provide both (devstack, deploy/compose/postgres/init-databases.sh), and
    # IF NOT EXISTS keeps servers where an administrator created them working.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("audit_id", sa.Uuid(), nullable=False),
        sa.Column(
            "occurred_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("actor_subject", sa.Text(), nullable=False),
        sa.Column("actor_roles", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("actor_client", sa.Text(), nullable=True),
        sa.Column("actor_is_service", sa.Boolean(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("fields", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("client_address", sa.Text(), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("trace_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("audit_id"),
    )
    op.create_index("audit_log_record_idx", "audit_log", ["record_id", "occurred_at"], unique=False)
    for statement in append_only_ddl("audit_log"):
        op.execute(statement)
    op.create_table(
        "expert_sources",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("source_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("member_id"),
    )
    op.create_table(
        "experts",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("given_name", sa.Text(), nullable=False),
        sa.Column("family_name", sa.Text(), nullable=False),
        sa.Column("preferred_language", sa.String(length=2), nullable=False),
        sa.Column("country_of_residence", sa.String(length=2), nullable=False),
        sa.Column("embassy_id", sa.Text(), nullable=False),
        sa.Column("languages", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("occupations", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column(
            "experience_occupations",
            postgresql.ARRAY(sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("isco_units", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("isco_minors", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column(
            "isco_submajors", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "experience_years",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("skill_uris", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("skill_labels", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("max_isced_level", sa.Integer(), nullable=True),
        sa.Column(
            "mission_types", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("available_from", sa.Date(), nullable=True),
        sa.Column("available_until", sa.Date(), nullable=True),
        sa.Column("remote", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "summary",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("search_text", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "search", postgresql.TSVECTOR(), server_default=sa.text("''::tsvector"), nullable=False
        ),
        sa.Column("source_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("member_id"),
    )
    op.create_index(
        "experts_isco_minors_idx", "experts", ["isco_minors"], unique=False, postgresql_using="gin"
    )
    op.create_index(
        "experts_isco_submajors_idx",
        "experts",
        ["isco_submajors"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "experts_isco_units_idx", "experts", ["isco_units"], unique=False, postgresql_using="gin"
    )
    op.create_index(
        "experts_search_idx", "experts", ["search"], unique=False, postgresql_using="gin"
    )
    op.create_index(
        "experts_search_text_idx",
        "experts",
        ["search_text"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    op.create_index(
        "experts_skill_uris_idx", "experts", ["skill_uris"], unique=False, postgresql_using="gin"
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="inbox_pkey"),
    )
    op.create_table(
        "needs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("institution", sa.Text(), nullable=False),
        sa.Column("institution_kind", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("occupations", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column(
            "skills",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("min_isced_level", sa.Integer(), nullable=True),
        sa.Column("languages", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("duration_days", sa.Integer(), nullable=True),
        sa.Column("region", sa.Text(), nullable=False),
        sa.Column("prefecture", sa.Text(), nullable=True),
        sa.Column("work_mode", sa.String(length=16), server_default="on_site", nullable=False),
        sa.Column("experts_wanted", sa.Integer(), server_default="1", nullable=False),
        sa.Column("funding_amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("funding_currency", sa.String(length=3), nullable=True),
        sa.Column("funding_source", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="draft", nullable=False),
        sa.Column("close_reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revision", sa.Integer(), server_default="1", nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("request_digest", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("needs_status_idx", "needs", ["status", "created_at"], unique=False)
    op.create_index(
        "needs_idempotency_idx", "needs", ["created_by", "idempotency_key"], unique=True
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("headers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("outbox_key_idx", "outbox", ["key"], unique=False)
    op.create_index(
        "outbox_unpublished_idx",
        "outbox",
        ["id"],
        unique=False,
        postgresql_where=sa.text("published_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "outbox_unpublished_idx",
        table_name="outbox",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_index("outbox_key_idx", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("needs_idempotency_idx", table_name="needs")
    op.drop_index("needs_status_idx", table_name="needs")
    op.drop_table("needs")
    op.drop_table("inbox")
    op.drop_index("experts_skill_uris_idx", table_name="experts", postgresql_using="gin")
    op.drop_index(
        "experts_search_text_idx",
        table_name="experts",
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    op.drop_index("experts_search_idx", table_name="experts", postgresql_using="gin")
    op.drop_index("experts_isco_units_idx", table_name="experts", postgresql_using="gin")
    op.drop_index("experts_isco_submajors_idx", table_name="experts", postgresql_using="gin")
    op.drop_index("experts_isco_minors_idx", table_name="experts", postgresql_using="gin")
    op.drop_table("experts")
    op.drop_table("expert_sources")
    for statement in drop_append_only_ddl("audit_log"):
        op.execute(statement)
    op.drop_index("audit_log_record_idx", table_name="audit_log")
    op.drop_table("audit_log")
