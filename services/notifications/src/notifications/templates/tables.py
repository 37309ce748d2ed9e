"""Message templates, one row per saved version."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from notifications.tables import metadata

# Message templates, one row per saved version; sends use the latest active version.
templates = Table(
    "templates",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("key", Text, nullable=False),
    Column("language", String(2), nullable=False),
    Column("version", Integer, nullable=False),
    Column("category", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("sms", Text, nullable=False),
    # Declared variables: name -> sample value (used by previews and save-time checks).
    Column("variables", JSONB, nullable=False),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("key", "language", "version", name="templates_version_once"),
)
