"""The notifications service's service-wide tables (its own database) and the metadata.

Every feature's tables (``<feature>/tables.py``) are on this one ``metadata``; the
recipients (the contact kept of each member) are read by every feature, so they are here.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from diaspora_events.consumer import inbox_table
from diaspora_events.outbox import outbox_table
from diaspora_identity.audit import audit_table

metadata = MetaData()

# The contact details this service keeps of each member, fed by registry events.
# Segment attributes (occupations, consents, anything the registry adds later) live
# here too: `occupations` and `attributes` (JSON) are what campaign segments filter on.
recipients = Table(
    "recipients",
    metadata,
    Column("member_id", Uuid, primary_key=True),
    Column("given_name", Text, nullable=False),
    Column("family_name", Text, nullable=False),
    Column("email", Text),
    Column("phone", Text),
    Column("language", String(2), nullable=False, server_default="fr"),
    Column("country_of_residence", String(2)),
    Column("occupations", ARRAY(Text), nullable=False, server_default="{}"),
    Column("attributes", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The time of the registry event whose snapshot the row holds (NULL: placeholder
    # copied at a merge, replaced by any snapshot): an older snapshot is ignored.
    Column("source_time", DateTime(timezone=True)),
    # When the registry's latest applied newsletters consent decision was taken.
    Column("newsletter_consent_at", DateTime(timezone=True)),
    # When the person proved they own the email / phone above (NULL: not proven; a new
    # value resets it). Nothing but its verification is sent to an unproven contact.
    Column("email_verified_at", DateTime(timezone=True)),
    Column("phone_verified_at", DateTime(timezone=True)),
    # The registration's time, for the welcome message; welcomed_at once it is queued
    # (it follows the first verified contact, see notifications.contacts.verification).
    Column("registered_at", DateTime(timezone=True)),
    Column("welcomed_at", DateTime(timezone=True)),
)

# Staff reads of delivery logs and inboxes, template saves and previews (append-only;
# the one definition, shared with registry and matching: diaspora_identity.audit).
audit_log = audit_table(metadata, chained=True)

outbox = outbox_table(metadata)

inbox = inbox_table(metadata)
