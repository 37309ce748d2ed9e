"""Cases of returning migrants and their follow-ups."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from returnees.tables import metadata

cases = Table(
    "cases",
    metadata,
    Column("id", Uuid, primary_key=True),
    # The returnee's registry member id (NULL: a person not in the registry).
    Column("member_id", Uuid),
    # The returnee's account when they declared their return themselves.
    Column("returnee_subject", Text),
    Column("origin", String(16), nullable=False),
    # The consular application of a laissez-passer (origin laissez_passer): one case each.
    Column("application_id", Uuid, unique=True),
    Column("status", String(16), nullable=False),
    Column("assigned_to", Text),
    Column("opened_by", Text, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("version", Integer, nullable=False, server_default="1"),
    # Intake.
    Column("expected_arrival", Date),
    Column("return_date", Date),
    Column("country_from", String(2)),
    Column("reason", String(24)),
    # Where the returnee settles in Togo (diaspora_reference.togo): a prefecture's slug and
    # its region's ISO 3166-2:TG code. Referrals take them from here.
    Column("prefecture", String(40)),
    Column("region", String(8)),
    # Needs assessment: [{area, priority, met}], and the reintegration plan's milestones:
    # [{title, due_on, done_on}].
    Column("needs", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("milestones", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    # Closure.
    Column("outcome", String(24)),
    Column("outcome_notes", Text),
    Column("closed_at", DateTime(timezone=True)),
    # Health, psychosocial and vulnerability fields: AES-GCM with the data key of
    # `sealed_subject` (cases/sealing.py); NULL when none was given or after erasure.
    Column("sensitive", LargeBinary),
    Column("sealed_subject", Uuid),
    Index("cases_member_idx", "member_id"),
    Index("cases_assigned_idx", "assigned_to", "status"),
    # A case worker's worklist, newest first (0007_dashboard_indexes).
    Index("cases_worklist_idx", "assigned_to", text("opened_at DESC"), "id"),
    Index("cases_country_reason_idx", "country_from", "reason"),
)

follow_ups = Table(
    "case_follow_ups",
    metadata,
    Column("case_id", Uuid, ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    Column("months", Integer, primary_key=True),
    Column("due_on", Date, nullable=False),
    Column("done_on", Date),
    Column("notes", Text),
    Column("recorded_by", Text),
    # Set once by the worker's job when the due date passed with nothing recorded.
    Column("overdue_at", DateTime(timezone=True)),
    Index(
        "case_follow_ups_due_idx",
        "due_on",
        postgresql_where=text("done_on IS NULL AND overdue_at IS NULL"),
    ),
)
