"""Payments recorded by reference, and the receipt counters (one per embassy and year)."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)

from consular.tables import metadata

payments = Table(
    "payments",
    metadata,
    Column("id", Uuid, primary_key=True),
    # NULL once the application is erased (a withdrawn one, say): a receipt is an
    # accounting record and its number stays taken (docs/consular.md, "Payments").
    Column("application_id", Uuid, ForeignKey("applications.id", ondelete="SET NULL")),
    # The application's applicant and embassy, copied: the policy's scopes compare them.
    Column("applicant_id", Uuid),
    Column("applicant_subject", Text, nullable=False),
    Column("embassy_id", Text, nullable=False),
    Column("receipt_year", Integer, nullable=False),
    Column("receipt_sequence", Integer, nullable=False),
    Column("receipt_number", Text, nullable=False, unique=True),
    Column("method", Text, nullable=False),
    Column("payer_reference", Text, nullable=False),
    Column("amount", Numeric(14, 2), nullable=False),
    Column("currency", Text, nullable=False),
    Column("recorded_by", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("voided_at", DateTime(timezone=True)),
    Column("voided_by", Text),
    Column("void_reason", Text),
    UniqueConstraint(
        "embassy_id", "receipt_year", "receipt_sequence", name="payments_receipt_sequence_key"
    ),
    CheckConstraint(
        "method IN ('cash_at_embassy', 'bank_transfer', 'mobile_money')",
        name="payments_method_check",
    ),
    Index("payments_application_idx", "application_id"),
    # One payment in force per application (a voided one no longer counts).
    Index(
        "payments_one_active_idx",
        "application_id",
        unique=True,
        postgresql_where=text("voided_at IS NULL"),
    ),
)

# The last receipt sequence given per embassy and year; incremented in the recording's
# own transaction (the row lock makes concurrent recordings wait, a rollback gives the
# number back): gap-free.
receipt_counters = Table(
    "receipt_counters",
    metadata,
    Column("embassy_id", Text, primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("last", Integer, nullable=False),
)
