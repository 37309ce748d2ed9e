"""embassy jurisdiction and owner of each member, append-only audit log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from diaspora_identity.audit import append_only_ddl, drop_append_only_ddl
from diaspora_identity.jurisdictions import Jurisdictions

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("members", sa.Column("embassy_id", sa.Text(), nullable=True))
    op.add_column("members", sa.Column("owner_subject", sa.Text(), nullable=True))
    op.add_column("members", sa.Column("registered_by", sa.Text(), nullable=True))
    op.add_column("members", sa.Column("registered_by_role", sa.Text(), nullable=True))
    # Existing members get their post from the seed; the service re-derives it at start
    # from the jurisdictions file it is configured with.
    jurisdictions = Jurisdictions.load()
    members = sa.table(
        "members", sa.column("embassy_id", sa.Text()), sa.column("country_of_residence", sa.Text())
    )
    op.execute(
        members.update().values(
            embassy_id=jurisdictions.sql_embassy_of(members.c.country_of_residence)
        )
    )
    op.alter_column("members", "embassy_id", nullable=False)
    op.create_unique_constraint("members_owner_subject_key", "members", ["owner_subject"])
    op.create_index("members_embassy_idx", "members", ["embassy_id", "id"])
    op.create_index("members_country_idx", "members", ["country_of_residence", "id"])

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
    op.create_index("audit_log_record_idx", "audit_log", ["record_id", "occurred_at"])
    for statement in append_only_ddl("audit_log"):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_append_only_ddl("audit_log"):
        op.execute(statement)
    op.drop_index("audit_log_record_idx", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("members_country_idx", table_name="members")
    op.drop_index("members_embassy_idx", table_name="members")
    op.drop_constraint("members_owner_subject_key", "members", type_="unique")
    op.drop_column("members", "registered_by_role")
    op.drop_column("members", "registered_by")
    op.drop_column("members", "owner_subject")
    op.drop_column("members", "embassy_id")
