"""Audit trail of notifications: staff reads of delivery logs and inboxes, template saves
and previews (append-only, like registry's and matching's).

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from diaspora_identity.audit import append_only_ddl, drop_append_only_ddl

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The columns of diaspora_identity.audit.audit_table as of this revision.
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
