"""The notifications service's tables (its own database)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
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
    # (it follows the first verified contact, see notifications.verification).
    Column("registered_at", DateTime(timezone=True)),
    Column("welcomed_at", DateTime(timezone=True)),
)

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

# A person's choices; no row means the defaults (see notifications.preferences).
preferences = Table(
    "preferences",
    metadata,
    Column(
        "member_id",
        Uuid,
        ForeignKey("recipients.member_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("channels", ARRAY(Text), nullable=False),
    # IANA zone; NULL: derived from the country of residence.
    Column("timezone", Text),
    Column("quiet_start", Time),
    Column("quiet_end", Time),
    Column("opted_out", ARRAY(Text), nullable=False, server_default="{}"),
    # Categories that need consent (newsletter) the person opted in to.
    Column("consents", ARRAY(Text), nullable=False, server_default="{}"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

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

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("cause_event_id", Uuid, nullable=False),
    # NULL once the person is erased (the row stays, anonymised, for statistics).
    Column("recipient_id", Uuid),
    Column("channel", String(16), nullable=False),
    Column("template", Text, nullable=False),
    Column("template_version", Integer),
    Column("category", Text, nullable=False, server_default="account"),
    # Legal and safety messages: no opt-out, no quiet hours.
    Column("mandatory", Boolean, nullable=False, server_default="false"),
    Column("language", String(2), nullable=False),
    Column("address", Text),
    Column("subject", Text),
    Column("body", Text),
    Column("sms_text", Text),
    # pending -> sent | failed | cancelled
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    # W3C trace context of the event that caused the delivery: the send continues its trace.
    Column("traceparent", Text),
    Column("campaign_id", Uuid),
    # The delivery this one falls back from (permanent failure) or resends.
    Column("previous_id", Uuid),
    Column("reason", String(16), nullable=False, server_default="event"),
    Column("anonymised_at", DateTime(timezone=True)),
    # One delivery per (event, recipient, channel): a redelivered event sends nothing twice.
    UniqueConstraint("cause_event_id", "recipient_id", "channel", name="deliveries_once"),
    Index(
        "deliveries_due_idx",
        "channel",
        "next_attempt_at",
        postgresql_where=text("status = 'pending'"),
    ),
    Index("deliveries_recipient_idx", "recipient_id", "created_at"),
    Index("deliveries_campaign_idx", "campaign_id", "status"),
)

# The in-app inbox: what the person reads in the portal.
inbox_messages = Table(
    "inbox_messages",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column(
        "member_id",
        Uuid,
        ForeignKey("recipients.member_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("delivery_id", Uuid, nullable=False, unique=True),
    Column("category", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("read_at", DateTime(timezone=True)),
    Index("inbox_messages_member_idx", "member_id", "created_at"),
    Index(
        "inbox_messages_unread_idx",
        "member_id",
        "created_at",
        postgresql_where=text("read_at IS NULL"),
    ),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text, nullable=False),
    Column("template", Text, nullable=False),
    Column("variables", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("segment", JSONB, nullable=False),
    # Messages per second this campaign may hand to the channels.
    Column("rate_per_second", Integer, nullable=False),
    # draft -> scheduled -> sending -> completed | cancelled
    Column("status", String(16), nullable=False, server_default="draft"),
    Column("send_at", DateTime(timezone=True)),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("audience", Integer),
    Column("idempotency_key", Text, unique=True),
    Index("campaigns_due_idx", "send_at", postgresql_where=text("status = 'scheduled'")),
)

# The campaign's audience, frozen when the send starts: one row per person, so a
# restarted worker continues where it stopped and nobody is handed over twice.
campaign_recipients = Table(
    "campaign_recipients",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("campaign_id", Uuid, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("recipient_id", Uuid),
    # pending -> queued (a delivery exists) | skipped (no usable channel)
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("delivery_id", Uuid),
    UniqueConstraint("campaign_id", "recipient_id", name="campaign_recipients_once"),
    Index(
        "campaign_recipients_pending_idx",
        "campaign_id",
        "id",
        postgresql_where=text("status = 'pending'"),
    ),
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

# Staff reads of delivery logs and inboxes, template saves and previews (append-only;
# the one definition, shared with registry and matching: diaspora_identity.audit).
audit_log = audit_table(metadata, chained=True)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
