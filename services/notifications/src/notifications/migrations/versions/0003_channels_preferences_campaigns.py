"""Templates with versions, preferences, in-app inbox, campaigns, anonymisable deliveries.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from notifications.templates.domain import seed_rows

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "recipients",
        sa.Column("occupations", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
    )
    op.add_column(
        "recipients",
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )
    op.create_table(
        "preferences",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("channels", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("timezone", sa.Text(), nullable=True),
        sa.Column("quiet_start", sa.Time(), nullable=True),
        sa.Column("quiet_end", sa.Time(), nullable=True),
        sa.Column("opted_out", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("consents", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["member_id"], ["recipients.member_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("member_id"),
    )
    templates = op.create_table(
        "templates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("sms", sa.Text(), nullable=False),
        sa.Column("variables", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", "language", "version", name="templates_version_once"),
    )
    # Deliveries outlive an erased recipient, anonymised: no foreign key any more.
    op.drop_constraint("deliveries_recipient_id_fkey", "deliveries", type_="foreignkey")
    op.alter_column("deliveries", "recipient_id", nullable=True)
    op.alter_column("deliveries", "address", nullable=True)
    op.alter_column("deliveries", "subject", nullable=True)
    op.alter_column("deliveries", "body", nullable=True)
    op.add_column("deliveries", sa.Column("template_version", sa.Integer(), nullable=True))
    op.add_column(
        "deliveries", sa.Column("category", sa.Text(), server_default="account", nullable=False)
    )
    op.add_column(
        "deliveries", sa.Column("mandatory", sa.Boolean(), server_default="false", nullable=False)
    )
    op.add_column("deliveries", sa.Column("sms_text", sa.Text(), nullable=True))
    op.add_column("deliveries", sa.Column("campaign_id", sa.Uuid(), nullable=True))
    op.add_column("deliveries", sa.Column("previous_id", sa.Uuid(), nullable=True))
    op.add_column(
        "deliveries",
        sa.Column("reason", sa.String(length=16), server_default="event", nullable=False),
    )
    op.add_column(
        "deliveries", sa.Column("anonymised_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.drop_index("deliveries_due_idx", table_name="deliveries")
    op.create_index(
        "deliveries_due_idx",
        "deliveries",
        ["channel", "next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "deliveries_campaign_idx", "deliveries", ["campaign_id", "status"], unique=False
    )
    op.create_table(
        "inbox_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["recipients.member_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("delivery_id"),
    )
    op.create_index(
        "inbox_messages_member_idx", "inbox_messages", ["member_id", "created_at"], unique=False
    )
    op.create_index(
        "inbox_messages_unread_idx",
        "inbox_messages",
        ["member_id", "created_at"],
        unique=False,
        postgresql_where=sa.text("read_at IS NULL"),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column(
            "variables",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("segment", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("rate_per_second", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="draft", nullable=False),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("audience", sa.Integer(), nullable=True),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_index(
        "campaigns_due_idx",
        "campaigns",
        ["send_at"],
        unique=False,
        postgresql_where=sa.text("status = 'scheduled'"),
    )
    op.create_table(
        "campaign_recipients",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("recipient_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "recipient_id", name="campaign_recipients_once"),
    )
    op.create_index(
        "campaign_recipients_pending_idx",
        "campaign_recipients",
        ["campaign_id", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    # The templates shipped in the package (notifications/templates/files) as version 1.
    rows = seed_rows()
    if rows:
        op.bulk_insert(templates, rows)


def downgrade() -> None:
    op.drop_table("campaign_recipients")
    op.drop_table("campaigns")
    op.drop_table("inbox_messages")
    op.drop_index("deliveries_campaign_idx", table_name="deliveries")
    op.drop_index("deliveries_due_idx", table_name="deliveries")
    op.create_index(
        "deliveries_due_idx",
        "deliveries",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    for column in (
        "anonymised_at",
        "reason",
        "previous_id",
        "campaign_id",
        "sms_text",
        "mandatory",
        "category",
        "template_version",
    ):
        op.drop_column("deliveries", column)
    op.execute("DELETE FROM deliveries WHERE recipient_id IS NULL OR address IS NULL")
    op.alter_column("deliveries", "body", nullable=False)
    op.alter_column("deliveries", "subject", nullable=False)
    op.alter_column("deliveries", "address", nullable=False)
    op.alter_column("deliveries", "recipient_id", nullable=False)
    op.create_foreign_key(
        "deliveries_recipient_id_fkey",
        "deliveries",
        "recipients",
        ["recipient_id"],
        ["member_id"],
        ondelete="CASCADE",
    )
    op.drop_table("templates")
    op.drop_table("preferences")
    op.drop_column("recipients", "attributes")
    op.drop_column("recipients", "occupations")
