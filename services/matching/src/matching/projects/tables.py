"""Tables of the project holders' platform (migration 0002)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR

from matching.tables import metadata

# The words partners search: title, sector and description, French stemming (most
# projects are written in French; English words still match on their stem or exactly).
PROJECT_SEARCH_DOCUMENT = (
    "setweight(to_tsvector('french', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('french', coalesce(sector, '')), 'B') || "
    "setweight(to_tsvector('french', coalesce(description, '')), 'C')"
)

projects = Table(
    "projects",
    metadata,
    Column("id", Uuid, primary_key=True),
    # The holder: the registry member id from their token (deleted with their data).
    Column("holder_id", Uuid, nullable=False),
    Column("title", Text, nullable=False),
    Column("sector", String(32), nullable=False),
    # ISO 3166-2:TG region code and the prefecture's slug (diaspora_reference.togo).
    Column("region", String(8), nullable=False),
    Column("prefecture", Text),
    Column("amount_sought", Numeric(16, 2), nullable=False),
    Column("currency", String(3), nullable=False),
    # idea | feasibility | seed | growth
    Column("stage", String(16), nullable=False),
    Column("partners_wanted", ARRAY(Text), nullable=False, server_default="{}"),
    Column("description", Text, nullable=False, server_default=""),
    # How partners may reach the holder; shown to them only if share_contact is true.
    Column("contact_name", Text, nullable=False),
    Column("contact_email", Text),
    Column("contact_phone", Text),
    Column("share_contact", Boolean, nullable=False, server_default="false"),
    # open | withdrawn
    Column("status", String(16), nullable=False, server_default="open"),
    Column("idempotency_key", Text),
    Column("request_digest", Text),
    Column("submitted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("withdrawn_at", DateTime(timezone=True)),
    Column("revision", Integer, nullable=False, server_default="1"),
    Column("search", TSVECTOR, Computed(PROJECT_SEARCH_DOCUMENT, persisted=True)),
    UniqueConstraint("holder_id", "idempotency_key", name="projects_idempotency_key"),
    Index("projects_holder_idx", "holder_id"),
    Index("projects_browse_idx", "status", "region", "sector", "stage"),
    Index("projects_search_idx", "search", postgresql_using="gin"),
)

# Interest a national actor or partner expressed in a project: one per person and project.
project_interests = Table(
    "project_interests",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("project_id", Uuid, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("organisation", Text, nullable=False),
    # The partner organisation of a partner_caseworker (their scope), else NULL.
    Column("partner_org", Text),
    Column("actor_subject", Text, nullable=False),
    Column("actor_role", String(32), nullable=False),
    # The actor's professional contact, from their token's claims, for the holder to reply.
    Column("actor_name", Text),
    Column("actor_email", Text),
    Column("message", Text),
    Column("expressed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("project_id", "actor_subject", name="project_interests_once"),
    Index("project_interests_partner_idx", "partner_org", "expressed_at"),
)
