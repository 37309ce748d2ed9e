"""Tables of missions (migration 0002)."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    Uuid,
    func,
)

from matching.tables import metadata

# The mission that follows an accepted proposal, from agreement to completion.
missions = Table(
    "missions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("proposal_id", Uuid, ForeignKey("proposals.id"), nullable=False, unique=True),
    Column("need_id", Uuid, ForeignKey("needs.id"), nullable=False),
    # NULL once the expert's data was erased; the facts below stay for the counts.
    Column("member_id", Uuid),
    # What statistics count, copied when the mission is created: the need's type and
    # place, the expert's country of residence (from the experts read model).
    Column("type", String(32), nullable=False),
    Column("region", String(8)),
    Column("prefecture", Text),
    Column("work_mode", String(16), nullable=False, server_default="on_site"),
    Column("country_of_residence", String(2)),
    # awaiting_agreement -> agreed -> travel_booked -> completed; cancelled
    Column("status", String(24), nullable=False, server_default="awaiting_agreement"),
    Column("starts_on", Date),
    Column("ends_on", Date),
    Column("terms", Text),
    Column("agreed_at", DateTime(timezone=True)),
    Column("agreed_by", Text),
    Column("travel_out_on", Date),
    Column("travel_back_on", Date),
    Column("report", Text),
    Column("reported_at", DateTime(timezone=True)),
    Column("completed_at", DateTime(timezone=True)),
    Column("completed_by", Text),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("cancel_reason", Text),
    Column("erased_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revision", Integer, nullable=False, server_default="1"),
    Index("missions_member_idx", "member_id"),
    Index("missions_counts_idx", "status", "type", "region", "country_of_residence"),
)
