"""The identity checks officers recorded: the history the member's level is derived from."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)

from registry.tables import metadata

identity_verifications = Table(
    "identity_verifications",
    metadata,
    Column("id", Uuid, primary_key=True),
    # No ON DELETE CASCADE: erasure and merge remove or move the rows themselves (their
    # steps, composed by the bootstrap); a path that forgot them fails instead of leaving
    # them behind.
    Column("member_id", Uuid, ForeignKey("members.id"), nullable=False),
    Column("level", Text, nullable=False),
    Column("method", Text, nullable=False),
    Column("document_type", Text, nullable=False),
    # The document's number, sealed like the members' document numbers (registry.crypto,
    # bound to the member and to this row), never in events, logs or the history.
    Column("key_id", Text, nullable=False),
    Column("number_ciphertext", LargeBinary, nullable=False),
    Column("document_expires_on", Date, nullable=False),
    Column("seen_on", Date, nullable=False),
    Column("note", Text),
    # The member's embassy when the check was recorded (the officer's, for an officer).
    Column("embassy_id", Text, nullable=False),
    Column("verified_by", Text, nullable=False),
    Column("verified_by_role", Text, nullable=False),
    Column("verified_at", DateTime(timezone=True), nullable=False),
    # Idempotency-Key of the POST (per officer), with a digest of its body and member.
    Column("idempotency_key", Text),
    Column("request_digest", Text),
    CheckConstraint("level IN ('document_checked', 'in_person')", name="identity_level_known"),
    CheckConstraint(
        "method IN ('document_in_person', 'document_upload')", name="identity_method_known"
    ),
    Index("identity_verifications_member_idx", "member_id", "verified_at"),
    UniqueConstraint("verified_by", "idempotency_key", name="identity_verifications_idempotency"),
)
