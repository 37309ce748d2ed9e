"""member profile: identity, contacts, place, skills, education, availability; documents
(encrypted), consents, history, erased ids; version for optimistic concurrency

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EMPTY_LIST = sa.text("'[]'::jsonb")
EMPTY_OBJECT = sa.text("'{}'::jsonb")


def upgrade() -> None:
    add = op.add_column
    add("members", sa.Column("sex", sa.Text(), server_default="unspecified", nullable=False))
    add("members", sa.Column("birth_city", sa.Text(), nullable=True))
    add("members", sa.Column("birth_country", sa.String(2), nullable=True))
    add("members", sa.Column("postal_address", postgresql.JSONB(), nullable=True))
    add("members", sa.Column("city_name", sa.Text(), nullable=True))
    add("members", sa.Column("city_geonames_id", sa.Integer(), nullable=True))
    add("members", sa.Column("city_latitude", sa.Double(), nullable=True))
    add("members", sa.Column("city_longitude", sa.Double(), nullable=True))
    add("members", sa.Column("arrival_year", sa.Integer(), nullable=True))
    add("members", sa.Column("residence_status", sa.Text(), nullable=True))
    for name in ("languages", "occupation_codes", "skill_uris", "mission_types"):
        add("members", sa.Column(name, sa.ARRAY(sa.Text()), server_default="{}", nullable=False))
    for name in ("occupations", "skills", "education", "experience"):
        add(
            "members",
            sa.Column(name, postgresql.JSONB(), server_default=EMPTY_LIST, nullable=False),
        )
    add(
        "members",
        sa.Column("availability", postgresql.JSONB(), server_default=EMPTY_OBJECT, nullable=False),
    )
    add("members", sa.Column("registration_consent_method", sa.Text(), nullable=True))
    add("members", sa.Column("registration_consent_reference", sa.Text(), nullable=True))
    add("members", sa.Column("last_confirmed_at", sa.DateTime(timezone=True), nullable=True))
    add(
        "members",
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    add("members", sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    # Members registered before: their registration is their last confirmation.
    op.execute(
        "UPDATE members SET last_confirmed_at = registered_at, updated_at = registered_at, "
        "registration_consent_method = CASE WHEN owner_subject IS NOT NULL "
        "THEN 'self_service' END"
    )
    op.create_index(
        "members_occupation_codes_idx", "members", ["occupation_codes"], postgresql_using="gin"
    )
    op.create_index("members_skill_uris_idx", "members", ["skill_uris"], postgresql_using="gin")
    op.create_index("members_languages_idx", "members", ["languages"], postgresql_using="gin")
    op.create_index("members_last_confirmed_idx", "members", ["last_confirmed_at"])

    op.create_table(
        "member_documents",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("issuing_country", sa.String(2), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("number_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("member_id", "kind", name="member_documents_member_kind_key"),
    )
    op.create_table(
        "member_consents",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("actor_role", sa.Text(), nullable=False),
        sa.Column("actor_subject", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("member_consents_member_idx", "member_consents", ["member_id", "purpose", "id"])
    op.create_table(
        "member_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("actor_role", sa.Text(), nullable=False),
        sa.Column("actor_subject", sa.Text(), nullable=True),
        sa.Column("fields", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("old_values", postgresql.JSONB(), server_default=EMPTY_OBJECT, nullable=False),
        sa.Column("new_values", postgresql.JSONB(), server_default=EMPTY_OBJECT, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("member_changes_member_idx", "member_changes", ["member_id", "id"])
    op.create_table(
        "erased_members",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column(
            "erased_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("actor_role", sa.Text(), nullable=False),
        sa.Column("actor_subject", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("member_id"),
    )


def downgrade() -> None:
    op.drop_table("erased_members")
    op.drop_index("member_changes_member_idx", table_name="member_changes")
    op.drop_table("member_changes")
    op.drop_index("member_consents_member_idx", table_name="member_consents")
    op.drop_table("member_consents")
    op.drop_table("member_documents")
    for index in (
        "members_last_confirmed_idx",
        "members_languages_idx",
        "members_skill_uris_idx",
        "members_occupation_codes_idx",
    ):
        op.drop_index(index, table_name="members")
    for column in (
        "version",
        "updated_at",
        "last_confirmed_at",
        "registration_consent_reference",
        "registration_consent_method",
        "availability",
        "experience",
        "education",
        "skills",
        "occupations",
        "mission_types",
        "skill_uris",
        "occupation_codes",
        "languages",
        "residence_status",
        "arrival_year",
        "city_longitude",
        "city_latitude",
        "city_geonames_id",
        "city_name",
        "postal_address",
        "birth_country",
        "birth_city",
        "sex",
    ):
        op.drop_column("members", column)
