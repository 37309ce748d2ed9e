"""Members removed for good, and the verification of their contact values."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    Uuid,
    func,
)

from notifications.tables import metadata

# Members erased or merged away: no late or replayed snapshot brings them back. Only
# the id (not personal data on its own), the reason and the survivor of a merge.
removed_members = Table(
    "removed_members",
    metadata,
    Column("member_id", Uuid, primary_key=True),
    Column("reason", String(16), nullable=False),
    Column("survivor_id", Uuid),
    Column("removed_at", DateTime(timezone=True), nullable=False),
)

# One verification message sent to one contact value (every send, re-sends included, is
# a row: the rate limits count them). Only the secret's SHA-256 is kept.
contact_verifications = Table(
    "contact_verifications",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("member_id", Uuid, nullable=False),
    Column("kind", String(8), nullable=False),  # email | phone
    Column("address", Text),  # NULL once used, superseded or the member erased
    Column("secret_hash", Text, nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    # pending -> verified | superseded (a newer send or a new address) | exhausted
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("verified_at", DateTime(timezone=True)),
    # sha256 of the address: the per-address rate limit outlives the erased address.
    Column("address_hash", Text, nullable=False),
    Index("contact_verifications_member_idx", "member_id", "kind", "created_at"),
    Index("contact_verifications_address_idx", "address_hash", "created_at"),
)
