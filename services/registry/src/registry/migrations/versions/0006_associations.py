"""associations of Togolese abroad: records, member links, history

Revision ID: 0006
Revises: 0002
Create Date: 2026-11-28 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
# A branch of its own beside the member profile's migrations (the runner applies all heads).
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Name search ignores accents (also created by the development stack).
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.create_table(
        "associations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("city_name", sa.Text(), nullable=True),
        sa.Column("city_geonames_id", sa.Integer(), nullable=True),
        sa.Column("city_latitude", sa.Float(), nullable=True),
        sa.Column("city_longitude", sa.Float(), nullable=True),
        sa.Column("embassy_id", sa.Text(), nullable=False),
        sa.Column("domains", sa.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("officers", postgresql.JSONB(), server_default="[]", nullable=False),
        sa.Column("partnerships", postgresql.JSONB(), server_default="[]", nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("website", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column("dissolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dissolution_reason", sa.Text(), nullable=True),
        sa.Column(
            "registered_at",
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
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("registered_by", sa.Text(), nullable=False),
        sa.Column("registered_by_role", sa.Text(), nullable=False),
        sa.Column("contact_subject", sa.Text(), nullable=True),
        sa.Column("contact_member_id", sa.Uuid(), nullable=True),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("request_digest", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
        sa.CheckConstraint("status IN ('active', 'dissolved')", name="associations_status_check"),
    )
    op.create_index("associations_embassy_idx", "associations", ["embassy_id", "id"])
    op.create_index("associations_country_idx", "associations", ["country", "id"])
    op.create_index("associations_domains_idx", "associations", ["domains"], postgresql_using="gin")
    op.create_index(
        "associations_partnerships_idx",
        "associations",
        ["partnerships"],
        postgresql_using="gin",
        postgresql_ops={"partnerships": "jsonb_path_ops"},
    )
    op.create_index(
        "associations_officers_idx",
        "associations",
        ["officers"],
        postgresql_using="gin",
        postgresql_ops={"officers": "jsonb_path_ops"},
    )
    op.create_table(
        "association_members",
        sa.Column("association_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column(
            "linked_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("linked_by", sa.Text(), nullable=False),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["association_id"], ["associations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("association_id", "member_id", name="association_members_pkey"),
        sa.CheckConstraint("basis IN ('self', 'staff')", name="association_members_basis_check"),
    )
    op.create_index("association_members_member_idx", "association_members", ["member_id"])
    op.create_table(
        "association_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("association_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("actor_subject", sa.Text(), nullable=False),
        sa.Column("actor_roles", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("changed_fields", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("changes", postgresql.JSONB(), nullable=False),
        sa.ForeignKeyConstraint(["association_id"], ["associations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("association_history_idx", "association_history", ["association_id", "version"])


def downgrade() -> None:
    op.drop_index("association_history_idx", table_name="association_history")
    op.drop_table("association_history")
    op.drop_index("association_members_member_idx", table_name="association_members")
    op.drop_table("association_members")
    for index in (
        "associations_officers_idx",
        "associations_partnerships_idx",
        "associations_domains_idx",
        "associations_country_idx",
        "associations_embassy_idx",
    ):
        op.drop_index(index, table_name="associations")
    op.drop_table("associations")
