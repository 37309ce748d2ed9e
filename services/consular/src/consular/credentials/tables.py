"""Issued credentials: one per issued consular card or e-visa, with its signed token."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, Index, Table, Text, Uuid, text

from consular.tables import metadata

credentials = Table(
    "credentials",
    metadata,
    # The token's `jti`.
    Column("id", Uuid, primary_key=True),
    # The issued application (kept after the holder's erasure: an issued document is a
    # legal record, see docs/consular.md "Erasure").
    Column("application_id", Uuid, ForeignKey("applications.id"), nullable=False, unique=True),
    Column("credential_type", Text, nullable=False),
    # The holder: their registry member id (NULL: a foreign visitor) and account subject.
    Column("holder_id", Uuid),
    Column("holder_subject", Text, nullable=False),
    # The issuing embassy (the officers who may download and revoke it).
    Column("embassy_id", Text, nullable=False),
    # The key that signed it, and the JWS compact token itself.
    Column("kid", Text, nullable=False),
    Column("token", Text, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_by", Text),
    Column("revocation_reason", Text),
    Index("credentials_holder_idx", "holder_id"),
    Index("credentials_subject_idx", "holder_subject"),
    Index(
        "credentials_revoked_idx",
        "revoked_at",
        postgresql_where=text("revoked_at IS NOT NULL"),
    ),
)
