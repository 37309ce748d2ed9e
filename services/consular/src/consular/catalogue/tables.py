"""The service catalogue: each service type and its versions (the ministry's edits)."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from consular.tables import metadata

service_types = Table(
    "service_types",
    metadata,
    Column("code", Text, primary_key=True),
    Column("current_version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Every version ever published; never changed (applications refer to theirs).
service_type_versions = Table(
    "service_type_versions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("code", Text, ForeignKey("service_types.code"), nullable=False),
    Column("version", Integer, nullable=False),
    # catalogue.domain.ServiceTypeDefinition, as JSON.
    Column("definition", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The coordinator's subject (NULL: shipped with the platform).
    Column("created_by", Text),
    UniqueConstraint("code", "version", name="service_type_versions_code_version"),
)
