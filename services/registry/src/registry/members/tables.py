"""The members' tables: the record, its documents, consents and history, and the ids
of erased members."""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from registry.tables import metadata

members = Table(
    "members",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("given_name", Text, nullable=False),
    Column("family_name", Text, nullable=False),
    Column("date_of_birth", Date, nullable=False),
    Column("country_of_residence", String(2), nullable=False),
    Column("email", Text, nullable=False),
    Column("phone", Text, nullable=False),
    Column("preferred_language", String(2), nullable=False, server_default="fr"),
    Column("registered_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Idempotency-Key of the POST that created the member, with a digest of its body.
    Column("idempotency_key", Text, unique=True),
    Column("request_digest", Text),
    # The post whose jurisdiction covers the country of residence (reference data, re-derived
    # at start when the jurisdictions file changes).
    Column("embassy_id", Text, nullable=False),
    # The identity provider's subject of the person, when they registered themselves.
    Column("owner_subject", Text, unique=True),
    # Who filed the registration when it was not the person (assisted registration).
    Column("registered_by", Text),
    Column("registered_by_role", Text),
    # --- the full profile (migration 0003) ---------------------------------------------------
    Column("sex", Text, nullable=False, server_default="unspecified"),
    Column("birth_city", Text),
    Column("birth_country", String(2)),
    # {lines, postal_code, city, region, country}: registry-only, never in events.
    Column("postal_address", JSONB),
    # City of residence; coordinates and GeoNames id when the gazetteer knows it.
    Column("city_name", Text),
    Column("city_geonames_id", Integer),
    Column("city_latitude", Double),
    Column("city_longitude", Double),
    Column("arrival_year", Integer),
    Column("residence_status", Text),
    Column("languages", ARRAY(Text), nullable=False, server_default="{}"),
    Column("occupations", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("skills", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("education", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("experience", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("availability", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # Derived for search and statistics: every ISCO-08 code of the occupations with its
    # ancestors ("2211", "221", "22", "2"), the ESCO skill URIs, the mission types.
    Column("occupation_codes", ARRAY(Text), nullable=False, server_default="{}"),
    Column("skill_uris", ARRAY(Text), nullable=False, server_default="{}"),
    Column("mission_types", ARRAY(Text), nullable=False, server_default="{}"),
    # Assisted registration: how the person's consent to being registered was collected
    # (signed_form, in_person); self_service when they registered themselves.
    Column("registration_consent_method", Text),
    Column("registration_consent_reference", Text),
    Column("last_confirmed_at", DateTime(timezone=True)),
    # Summary of the identity checks officers recorded (registry.identity, migration 0011):
    # per level, the check valid longest; members/identity_level.py derives the level shown.
    Column("identity_checks", JSONB),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Optimistic concurrency: +1 on every change; the ETag of the record.
    Column("version", Integer, nullable=False, server_default="1"),
    Index("members_embassy_idx", "embassy_id", "id"),
    Index("members_country_idx", "country_of_residence", "id"),
    Index("members_occupation_codes_idx", "occupation_codes", postgresql_using="gin"),
    Index("members_skill_uris_idx", "skill_uris", postgresql_using="gin"),
    Index("members_languages_idx", "languages", postgresql_using="gin"),
    Index("members_last_confirmed_idx", "last_confirmed_at"),
)

# Nationality documents; numbers encrypted (AES-GCM, registry.crypto) with their key id.
member_documents = Table(
    "member_documents",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("member_id", Uuid, ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("issuing_country", String(2), nullable=False),
    Column("expires_on", Date),
    Column("key_id", Text, nullable=False),
    Column("number_ciphertext", LargeBinary, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("member_id", "kind", name="member_documents_member_kind_key"),
)

# Every consent decision (given or withdrawn) per purpose; the latest one counts.
member_consents = Table(
    "member_consents",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("member_id", Uuid, ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("purpose", Text, nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # self_service (the person), signed_form or in_person (recorded by staff).
    Column("method", Text, nullable=False),
    Column("actor_role", Text, nullable=False),
    # Staff only: a person acting on their own record is "the person".
    Column("actor_subject", Text),
    Index("member_consents_member_idx", "member_id", "purpose", "id"),
)

# History of a member's record: who changed which fields, when, from what to what.
member_changes = Table(
    "member_changes",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("member_id", Uuid, ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # registered, updated, confirmed, consent_granted, consent_withdrawn (others may add).
    Column("action", Text, nullable=False),
    Column("actor_role", Text, nullable=False),
    Column("actor_subject", Text),
    Column("fields", ARRAY(Text), nullable=False),
    # Document numbers never appear here (only that they changed).
    Column("old_values", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("new_values", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("version", Integer, nullable=False),
    Column("request_id", Text),
    Index("member_changes_member_idx", "member_id", "id"),
)

# Erased members: ids only, so that an erased id answers 410 and erasure can be proven.
erased_members = Table(
    "erased_members",
    metadata,
    Column("member_id", Uuid, primary_key=True),
    Column("erased_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor_role", Text, nullable=False),
    # Staff only (a person erasing their own record leaves no identifier behind).
    Column("actor_subject", Text),
)
