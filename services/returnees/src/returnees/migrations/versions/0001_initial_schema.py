"""initial schema: outbox, inbox, audit log (append-only, hash-chained) and the people
read model (fed by registry.members)

Revision ID: 0001
Revises:
Create Date: 2026-12-08 00:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from diaspora_identity.audit import append_only_ddl, drop_append_only_ddl
from diaspora_service.audit_chain import chain_ddl, drop_chain_ddl

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
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
    # Append-only, hash-chained (diaspora_identity.audit, diaspora_service.audit_chain).
    for statement in append_only_ddl("audit_log"):
        op.execute(statement)
    for statement in chain_ddl("audit_log"):
        op.execute(statement)
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
    op.create_table(
        "people",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("given_name", sa.Text(), nullable=False),
        sa.Column("family_name", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("preferred_language", sa.String(length=2), server_default="fr", nullable=False),
        sa.Column("country_of_residence", sa.String(length=2), nullable=False),
        sa.Column("source_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("member_id"),
    )
    op.create_table(
        "removed_people",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("survivor_id", sa.Uuid(), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("member_id"),
    )


def downgrade() -> None:
    op.drop_table("removed_people")
    op.drop_table("people")
    op.drop_index("outbox_unpublished_idx", table_name="outbox")
    op.drop_index("outbox_key_idx", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("inbox")
    for statement in drop_chain_ddl("audit_log"):
        op.execute(statement)
    for statement in drop_append_only_ddl("audit_log"):
        op.execute(statement)
    op.drop_index("audit_log_record_idx", table_name="audit_log")
    op.drop_table("audit_log")
