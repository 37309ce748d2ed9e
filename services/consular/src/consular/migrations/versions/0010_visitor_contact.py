"""visitor contact: a foreign visitor's verified email and language on their application

Revision ID: 0010_visitor_contact
Revises: 0009_erasure
Create Date: 2026-12-08 00:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_visitor_contact"
down_revision: str | None = "0009_erasure"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("applications", sa.Column("contact_email", sa.Text()))
    op.add_column("applications", sa.Column("contact_language", sa.Text()))


def downgrade() -> None:
    op.drop_column("applications", "contact_language")
    op.drop_column("applications", "contact_email")
