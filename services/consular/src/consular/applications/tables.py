"""Applications and the history of their transitions."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from consular.tables import metadata

applications = Table(
    "applications",
    metadata,
    Column("id", Uuid, primary_key=True),
    # The applicant's registry member id (NULL: a foreign visitor without a registry
    # record, for an e-visa), and the subject of their token (their account).
    Column("applicant_id", Uuid),
    Column("applicant_subject", Text, nullable=False),
    Column("service_type", Text, nullable=False),
    # The catalogue version the application is under (its form, fee, rules, target days).
    Column("service_version_id", Uuid, ForeignKey("service_type_versions.id"), nullable=False),
    Column("catalogue_version", Integer, nullable=False),
    # The embassy that processes it (the officers' queue); set again at submission.
    Column("embassy_id", Text),
    Column("status", Text, nullable=False, server_default="draft"),
    Column("answers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    # Optimistic concurrency (ETag / If-Match): +1 on every change.
    Column("version", Integer, nullable=False, server_default="1"),
    # The officer working the case (their subject), if any.
    Column("assigned_to", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("submitted_at", DateTime(timezone=True)),
    # SLA: submission + the type's target processing days; flagged overdue and
    # escalated to the ministry once past it without a decision (the worker's job).
    Column("due_at", DateTime(timezone=True)),
    Column("escalated_at", DateTime(timezone=True)),
    Column("decided_at", DateTime(timezone=True)),
    # The decision's reference, given at approval (e.g. EV-2026-3F9A1C07B2).
    Column("reference", Text, unique=True),
    # Idempotency-Key of the creating POST, per applicant account, with the digest of the
    # request it came with: a repeat answers the first application.
    Column("idempotency_key", Text),
    Column("request_digest", Text),
    # A foreign visitor's contact (no registry record): their account's verified email
    # and language, from their token at the draft; carried, sealed, on the status events
    # so that notifications can tell them (0010_visitor_contact). NULL for members.
    Column("contact_email", Text),
    Column("contact_language", Text),
    # Set when the applicant was erased and this decided application kept as the
    # embassy's record, pseudonymised (consular.erasure; deleted after its retention).
    Column("erased_at", DateTime(timezone=True)),
    UniqueConstraint("applicant_subject", "idempotency_key", name="applications_idempotency_key"),
    # The officers' queue (0008_queue_indexes; docs/benchmarks.md): the count and the
    # filters on assignee and type read the index alone; a queue without a status filter
    # is read in due-date order.
    Index(
        "applications_queue_idx",
        "embassy_id",
        "status",
        "due_at",
        postgresql_include=["assigned_to", "service_type", "created_at", "id"],
    ),
    Index("applications_embassy_due_idx", "embassy_id", "due_at", "created_at", "id"),
    Index(
        "applications_open_due_idx",
        "embassy_id",
        "due_at",
        "created_at",
        "id",
        postgresql_where=text(
            "status IN ('submitted', 'under_review', 'information_requested', 'resubmitted')"
        ),
    ),
    Index(
        "applications_erased_idx",
        "erased_at",
        postgresql_where=text("erased_at IS NOT NULL"),
    ),
    Index("applications_applicant_idx", "applicant_id", "created_at"),
    Index("applications_subject_idx", "applicant_subject", "created_at"),
    Index(
        "applications_sla_idx",
        "due_at",
        postgresql_where=text(
            "escalated_at IS NULL AND status IN ('submitted', 'under_review', 'resubmitted')"
        ),
    ),
)

application_history = Table(
    "application_history",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column(
        "application_id",
        Uuid,
        ForeignKey("applications.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("action", Text, nullable=False),
    Column("from_status", Text),
    Column("to_status", Text, nullable=False),
    Column("reason", Text),
    Column("actor_subject", Text, nullable=False),
    Column("actor_role", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("application_history_application_idx", "application_id", "id"),
)

# Each (subject, embassy) seen acting as an embassy officer in consular (any staff call
# on applications with the role and the embassy in the token): a case of an embassy is
# assigned only to one of them, or to the caller. Filled by ``service.note_officer``.
officers = Table(
    "officers",
    metadata,
    Column("subject", Text, primary_key=True),
    Column("embassy_id", Text, primary_key=True),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
)
