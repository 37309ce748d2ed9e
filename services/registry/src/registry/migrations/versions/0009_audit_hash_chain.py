"""audit_log: a hash chain (each entry commits to the one before it), existing entries
chained in id order; member_accesses, the read model of other services' audit entries
about members (the person's access log gathers every service's reads) (issue 15)

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-07 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from diaspora_service.audit_chain import chain_ddl, drop_chain_ddl

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for statement in chain_ddl("audit_log"):
        op.execute(statement)
    op.create_table(
        "member_accesses",
        sa.Column("audit_id", sa.Uuid(), primary_key=True),
        sa.Column("service", sa.Text(), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("actor_subject", sa.Text(), nullable=False),
        sa.Column("actor_roles", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("actor_is_service", sa.Boolean(), nullable=False),
        sa.Column("fields", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("member_accesses_record_idx", "member_accesses", ["record_id", "occurred_at"])


def downgrade() -> None:
    op.drop_index("member_accesses_record_idx", table_name="member_accesses")
    op.drop_table("member_accesses")
    for statement in drop_chain_ddl("audit_log"):
        op.execute(statement)
