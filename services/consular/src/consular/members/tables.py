"""The applicants read model: what consular keeps of each registry member, fed by
``registry.members`` only (no service reads another's database)."""

from __future__ import annotations

from sqlalchemy import Column, Date, DateTime, String, Table, Text, Uuid, func

from consular.tables import metadata
from diaspora_events.member_read_model import removed_members_table

applicants = Table(
    "applicants",
    metadata,
    Column("member_id", Uuid, primary_key=True),
    Column("given_name", Text, nullable=False),
    Column("family_name", Text, nullable=False),
    Column("email", Text),
    Column("preferred_language", String(2), nullable=False, server_default="fr"),
    Column("country_of_residence", String(2), nullable=False),
    # The embassy whose jurisdiction the person lives in (registry's, at the snapshot).
    Column("embassy_id", Text),
    # The strongest identity verification recorded (registry `profile.identity`): NULL
    # means nobody verified the person's identity.
    Column("identity_level", Text),
    Column("identity_method", Text),
    Column("identity_verified_at", DateTime(timezone=True)),
    Column("identity_embassy_id", Text),
    # The expiry of the document seen (registry `identity.expires_on`): after this date
    # the check no longer counts, even if no newer snapshot comes. NULL: no expiry known.
    Column("identity_expires_on", Date),
    # The time of the registry event whose snapshot the row holds: an older one is ignored.
    Column("source_time", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Printed on and signed into an issued consular card (consular.credentials); NULL for
    # rows kept before migration 0003 until the member's next snapshot.
    Column("date_of_birth", Date),
)

# Members erased or merged into another record: no late or replayed snapshot brings
# them back.
removed_applicants = removed_members_table(metadata, "removed_applicants")
