"""Identity checks expire; officers seen acting for an embassy.

- ``applicants.identity_expires_on``: the registry's ``IdentityVerification.expires_on``
  (the expiry of the document seen). After it, the check no longer counts for
  eligibility, even if no newer snapshot arrives.
- ``officers``: each (subject, embassy) an embassy officer acted for in consular, with
  when it was last seen; a case may be assigned only to one of them (or to the caller).

Revision ID: 0004_identity_expiry
Revises: 0003_credentials
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_identity_expiry"
down_revision: str | None = "0003_credentials"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("applicants", sa.Column("identity_expires_on", sa.Date(), nullable=True))
    op.create_table(
        "officers",
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("embassy_id", sa.Text(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject", "embassy_id"),
    )


def downgrade() -> None:
    op.drop_table("officers")
    op.drop_column("applicants", "identity_expires_on")
