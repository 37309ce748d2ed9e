"""The returnees' read model of registry members: what the return cell needs to link a
case to a person and reach them, fed by ``registry.members`` only (no service reads
another's database)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, String, Table, Text, Uuid, func

from diaspora_events.member_read_model import removed_members_table
from returnees.tables import metadata

people = Table(
    "people",
    metadata,
    Column("member_id", Uuid, primary_key=True),
    Column("given_name", Text, nullable=False),
    Column("family_name", Text, nullable=False),
    Column("email", Text),
    Column("phone", Text),
    Column("preferred_language", String(2), nullable=False, server_default="fr"),
    Column("country_of_residence", String(2), nullable=False),
    # The time of the registry event whose snapshot the row holds: an older one is ignored.
    Column("source_time", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Members erased or merged into another record: no late or replayed snapshot brings
# them back.
removed_people = removed_members_table(metadata, "removed_people")
