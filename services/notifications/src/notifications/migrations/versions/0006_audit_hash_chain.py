"""audit_log: a hash chain (each entry commits to the one before it), existing entries
chained in id order (issue 15), as in the registry and matching

Revision ID: 0006
Revises: 0005b
Create Date: 2026-12-07 15:20:00
"""

from collections.abc import Sequence

from alembic import op

from diaspora_service.audit_chain import chain_ddl, drop_chain_ddl

revision: str = "0006"
down_revision: str | None = "0005b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for statement in chain_ddl("audit_log"):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_chain_ddl("audit_log"):
        op.execute(statement)
