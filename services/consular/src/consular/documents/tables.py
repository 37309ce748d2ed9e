"""Uploaded documents: one row per document of an application or a difficulty report
(its bytes are in the object store under ``storage_key``)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Table,
    Text,
    Uuid,
)

from consular.tables import metadata

documents = Table(
    "documents",
    metadata,
    Column("id", Uuid, primary_key=True),
    # What it belongs to: an application, or a difficulty report (exactly one). The row
    # goes with its case; the stored object is removed by the service's own calls
    # (delete, erasure), never by the cascade alone.
    Column("application_id", Uuid, ForeignKey("applications.id", ondelete="CASCADE")),
    Column("report_id", Uuid, ForeignKey("reports.id", ondelete="CASCADE")),
    # The person it is about (the applicant or reporter's member id; NULL for a visitor
    # or a reporter without a registry record): what erasure looks up.
    Column("member_id", Uuid),
    # An application's: the catalogue's required-document code; a report's: attachment.
    Column("kind", Text, nullable=False),
    # The name the uploader gave (shown back; never used as a path or a key).
    Column("filename", Text),
    # The type detected from the bytes (application/pdf, image/jpeg, image/png).
    Column("content_type", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("storage_key", Text, nullable=False, unique=True),
    Column("uploaded_by", Text, nullable=False),
    # applicant, reporter, embassy_officer, ministry_coordinator.
    Column("uploaded_by_role", Text, nullable=False),
    Column("uploaded_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("(application_id IS NULL) <> (report_id IS NULL)", name="documents_one_owner"),
    Index("documents_application_idx", "application_id", "uploaded_at"),
    Index("documents_report_idx", "report_id", "uploaded_at"),
    Index("documents_member_idx", "member_id"),
)
