"""Hand-over packages sent to the national documentation authority, and its answers."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    Uuid,
)

from consular.tables import metadata

handovers = Table(
    "handovers",
    metadata,
    # The package's `jti`.
    Column("id", Uuid, primary_key=True),
    # One per application (an approved one: a legal record, kept on erasure).
    Column("application_id", Uuid, ForeignKey("applications.id"), nullable=False, unique=True),
    # The application's applicant and embassy, copied: the policy's scopes compare them.
    Column("applicant_id", Uuid),
    Column("applicant_subject", Text, nullable=False),
    Column("embassy_id", Text, nullable=False),
    Column("service_type", Text, nullable=False),
    Column("status", Text, nullable=False),
    # The JWS compact package and the key that signed it.
    Column("kid", Text, nullable=False),
    Column("package", Text, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The authority's last answer's reason (rejected) and the document's number (produced).
    Column("reason", Text),
    Column("document_number", Text),
    Column("version", Integer, nullable=False),
    CheckConstraint(
        "status IN ('sent', 'accepted', 'rejected', 'produced')", name="handovers_status_check"
    ),
)

handover_answers = Table(
    "handover_answers",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("handover_id", Uuid, ForeignKey("handovers.id"), nullable=False),
    Column("answer", Text, nullable=False),
    Column("from_status", Text, nullable=False),
    Column("reason", Text),
    Column("document_number", Text),
    # The authority's account (token subject) and OAuth client.
    Column("actor_subject", Text, nullable=False),
    Column("actor_client", Text),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("handover_answers_handover_idx", "handover_id", "id"),
)
