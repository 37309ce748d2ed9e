"""The associations' tables (migration 0006), in the registry's own database."""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY as PG_ARRAY
from sqlalchemy.dialects.postgresql import JSONB

from registry.tables import metadata

associations = Table(
    "associations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text, nullable=False),
    Column("country", String(2), nullable=False),
    # City as given; GeoNames id and coordinates when the packaged gazetteer knows it.
    Column("city_name", Text),
    Column("city_geonames_id", Integer),
    Column("city_latitude", Float),
    Column("city_longitude", Float),
    # Derived from the country through the jurisdictions, like a member's.
    Column("embassy_id", Text, nullable=False),
    # PostgreSQL's ARRAY: containment (@>) for the domain filter.
    Column("domains", PG_ARRAY(Text), nullable=False, server_default="{}"),
    # [{"role", "name", "member_id"}], in the order given (personal data).
    Column("officers", JSONB, nullable=False, server_default="[]"),
    # [{"region", "prefecture", "prefecture_slug", "description"}] in Togo.
    Column("partnerships", JSONB, nullable=False, server_default="[]"),
    Column("email", Text),
    Column("website", Text),
    Column("status", Text, nullable=False, server_default="active"),
    Column("dissolved_at", DateTime(timezone=True)),
    Column("dissolution_reason", Text),
    Column("registered_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Incremented by every change; the ETag of the record (If-Match on updates).
    Column("version", Integer, nullable=False, server_default="1"),
    # Who filed it (token subject) and under which role.
    Column("registered_by", Text, nullable=False),
    Column("registered_by_role", Text, nullable=False),
    # The citizen who registered it manages it (the policy's "own" scope): their
    # token subject and their member id; cleared when that member is erased.
    Column("contact_subject", Text),
    Column("contact_member_id", Uuid),
    Column("idempotency_key", Text, unique=True),
    Column("request_digest", Text),
    CheckConstraint("status IN ('active', 'dissolved')", name="associations_status_check"),
    Index("associations_embassy_idx", "embassy_id", "id"),
    Index("associations_country_idx", "country", "id"),
    Index("associations_domains_idx", "domains", postgresql_using="gin"),
    Index(
        "associations_partnerships_idx",
        "partnerships",
        postgresql_using="gin",
        postgresql_ops={"partnerships": "jsonb_path_ops"},
    ),
    Index(
        "associations_officers_idx",
        "officers",
        postgresql_using="gin",
        postgresql_ops={"officers": "jsonb_path_ops"},
    ),
)

# Which members belong to which association (both directions are queried).
association_members = Table(
    "association_members",
    metadata,
    Column(
        "association_id", Uuid, ForeignKey("associations.id", ondelete="CASCADE"), nullable=False
    ),
    # No foreign key to members: erasure and merges go through the hooks of this package,
    # which also publish the association's new snapshot.
    Column("member_id", Uuid, nullable=False),
    Column("linked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("linked_by", Text, nullable=False),
    # "self": the member joined (their consent); "staff": an officer in scope linked them.
    Column("basis", Text, nullable=False),
    PrimaryKeyConstraint("association_id", "member_id", name="association_members_pkey"),
    CheckConstraint("basis IN ('self', 'staff')", name="association_members_basis_check"),
    Index("association_members_member_idx", "member_id"),
)

# Every change of an association: who, when, what (before and after per field).
association_history = Table(
    "association_history",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column(
        "association_id", Uuid, ForeignKey("associations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("version", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("action", Text, nullable=False),
    Column("actor_subject", Text, nullable=False),
    Column("actor_roles", ARRAY(Text), nullable=False),
    Column("changed_fields", ARRAY(Text), nullable=False),
    # {field: {"before": ..., "after": ...}}
    Column("changes", JSONB, nullable=False),
    Index("association_history_idx", "association_id", "version"),
)
