"""Appointments' tables: embassies' slot templates (every version kept), the per-slot
seat counters that enforce capacity in the database, and the appointments."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from consular.tables import metadata

# One row per published version of an embassy's template: the highest version is the one
# in force; earlier ones stay (who changed what, when).
slot_templates = Table(
    "slot_templates",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("embassy_id", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("timezone", Text, nullable=False),
    Column("slot_minutes", Integer, nullable=False),
    Column("capacity", Integer, nullable=False),
    # {"mon": [{"start": "09:00", "end": "12:00"}, ...], ...} in the embassy's zone.
    Column("weekly_hours", JSONB, nullable=False),
    # [{"start": "2027-04-27", "end": "2027-04-27", "label": "..."}]
    Column("closures", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date),
    Column("horizon_days", Integer, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("embassy_id", "version", name="slot_templates_embassy_version"),
    CheckConstraint("slot_minutes > 0 AND capacity > 0 AND horizon_days > 0"),
)

# Seats taken per slot: capacity is enforced here (UPDATE ... SET booked = booked + 1
# WHERE booked < capacity, re-checked by PostgreSQL on the locked row), never by a read
# followed by a write. A row exists once a slot was first booked.
slot_seats = Table(
    "slot_seats",
    metadata,
    Column("embassy_id", Text, nullable=False),
    Column("slot_start", DateTime(timezone=True), nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("booked", Integer, nullable=False, server_default="0"),
    PrimaryKeyConstraint("embassy_id", "slot_start", name="slot_seats_pkey"),
    CheckConstraint("booked >= 0 AND booked <= capacity", name="slot_seats_capacity"),
)

appointments = Table(
    "appointments",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column(
        "application_id",
        Uuid,
        ForeignKey("applications.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # Copied from the application: the policy's scope attributes.
    Column("applicant_id", Uuid),
    Column("applicant_subject", Text, nullable=False),
    Column("embassy_id", Text, nullable=False),
    Column("slot_start", DateTime(timezone=True), nullable=False),
    Column("slot_end", DateTime(timezone=True), nullable=False),
    Column("timezone", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="booked"),
    Column("booked_by", Text, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("cancel_reason", Text),
    # Set when consular.appointment.reminder-due was written (reset by a reschedule).
    Column("reminder_sent_at", DateTime(timezone=True)),
    CheckConstraint("status IN ('booked', 'cancelled')", name="appointments_status"),
    # One active appointment per application.
    Index(
        "appointments_one_active_idx",
        "application_id",
        unique=True,
        postgresql_where=text("status = 'booked'"),
    ),
    Index("appointments_slot_idx", "embassy_id", "slot_start"),
    Index(
        "appointments_reminder_idx",
        "slot_start",
        postgresql_where=text("status = 'booked' AND reminder_sent_at IS NULL"),
    ),
)
