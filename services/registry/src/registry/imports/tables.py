"""Tables of bulk imports (registry database, migration 0004)."""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Table,
    Text,
    Uuid,
    func,
    text,
)

from registry.tables import metadata

# One uploaded file and its progress. Each batch commits its members, its error rows and
# the new counters in one transaction, so `position` (records read) is exactly where an
# interrupted import resumes.
import_jobs = Table(
    "import_jobs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("created_by", Text, nullable=False),
    Column("created_by_roles", ARRAY(Text), nullable=False),
    # The embassies whose jurisdiction the uploader covers; NULL: every country.
    Column("embassies", ARRAY(Text)),
    Column("filename", Text),
    Column("format", Text, nullable=False),
    Column("encoding", Text),
    Column("delimiter", Text),
    Column("mode", Text, nullable=False),
    Column("batch_size", Integer, nullable=False),
    # How the people listed consented to being registered (as for an assisted registration).
    Column("consent_method", Text, nullable=False),
    Column("consent_reference", Text),
    Column("status", Text, nullable=False, server_default="queued"),
    Column("total_rows", Integer, nullable=False),
    Column("blank_rows", Integer, nullable=False, server_default="0"),
    Column("position", Integer, nullable=False, server_default="0"),
    Column("processed_rows", Integer, nullable=False, server_default="0"),
    Column("accepted", Integer, nullable=False, server_default="0"),
    Column("rejected", Integer, nullable=False, server_default="0"),
    Column("duplicates", Integer, nullable=False, server_default="0"),
    Column("rejected_batches", Integer, nullable=False, server_default="0"),
    Column("ignored_columns", ARRAY(Text), nullable=False),
    # The uploaded file, dropped once the import is finished (it holds personal data).
    Column("content", LargeBinary),
    Column("error", Text),
    Column("idempotency_key", Text),
    Column("request_digest", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
    CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="import_jobs_status"),
    CheckConstraint("mode IN ('all_or_nothing', 'partial')", name="import_jobs_mode"),
    CheckConstraint(
        "consent_method IN ('signed_form', 'in_person')", name="import_jobs_consent_method"
    ),
    Index(
        "import_jobs_pending_idx",
        "created_at",
        postgresql_where=text("status IN ('queued', 'running')"),
    ),
    Index("import_jobs_idempotency_idx", "created_by", "idempotency_key", unique=True),
)

# The error report: one line per problem of a rejected row (row number, column, reason),
# never the cell's value.
import_errors = Table(
    "import_errors",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("job_id", Uuid, ForeignKey("import_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("row_number", Integer, nullable=False),
    Column("column_name", Text),
    Column("reason", Text, nullable=False),
    Index("import_errors_job_idx", "job_id", "row_number", "id"),
)
