"""Partner organisations: one row each (as they stand) and every version of them."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from returnees.tables import metadata

partners = Table(
    "partners",
    metadata,
    Column("id", Uuid, primary_key=True),
    # The `partner_org` claim of the organisation's case workers' tokens (unique).
    Column("partner_org", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    # The organisation's contact for the return cell (a desk, or a named person).
    Column("contact_name", Text, nullable=False),
    Column("contact_email", Text),
    Column("contact_phone", Text),
    # Need categories offered (partners.domain.NEEDS).
    Column("services", ARRAY(Text), nullable=False),
    # Coverage: whole regions (ISO 3166-2:TG) and single prefectures (slugs).
    Column("regions", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("prefectures", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Every version ever saved (never changed): who edited what, when.
partner_versions = Table(
    "partner_versions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("partner_id", Uuid, ForeignKey("partners.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("contact_name", Text, nullable=False),
    Column("contact_email", Text),
    Column("contact_phone", Text),
    Column("services", ARRAY(Text), nullable=False),
    Column("regions", ARRAY(Text), nullable=False),
    Column("prefectures", ARRAY(Text), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("edited_by", Text, nullable=False),
    Column("edited_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("partner_id", "version", name="partner_versions_partner_version"),
)
