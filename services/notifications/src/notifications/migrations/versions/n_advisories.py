"""subscribers: awareness subscribers of the returnees service (advisories, awareness
campaigns), kept from its events; double opt-in and unsubscription

Revision ID: n_advisories
Revises: 0006
Create Date: 2026-12-08 00:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "n_advisories"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("subscriber_id", sa.Uuid(), primary_key=True),
        sa.Column("channel", sa.String(8)),
        sa.Column("address", sa.Text()),
        sa.Column("language", sa.String(2), nullable=False, server_default="fr"),
        sa.Column("awareness", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("countries", ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("unsubscribe_link", sa.Text()),
        sa.Column("consent_text_version", sa.Text()),
        sa.Column("consented_at", sa.DateTime(timezone=True)),
        sa.Column("requested_at", sa.DateTime(timezone=True)),
        sa.Column("confirmed_at", sa.DateTime(timezone=True)),
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True)),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index(
        "subscribers_countries_idx", "subscribers", ["countries"], postgresql_using="gin"
    )


def downgrade() -> None:
    op.drop_table("subscribers")
