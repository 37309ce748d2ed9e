"""The access log's read model."""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    Boolean,
    Column,
    DateTime,
    Index,
    Table,
    Text,
    Uuid,
    func,
)

from registry.tables import metadata

# Read model: other services' audit entries about members (their ``*.audit`` topics,
# registry.access_log.consumer), so that a person's access log shows every service's reads.
member_accesses = Table(
    "member_accesses",
    metadata,
    Column("audit_id", Uuid, primary_key=True),
    Column("service", Text, nullable=False),
    Column("record_id", Uuid, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("action", Text, nullable=False),
    Column("resource", Text, nullable=False),
    Column("actor_subject", Text, nullable=False),
    Column("actor_roles", ARRAY(Text), nullable=False),
    Column("actor_is_service", Boolean, nullable=False),
    Column("fields", ARRAY(Text), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("member_accesses_record_idx", "record_id", "occurred_at"),
)
