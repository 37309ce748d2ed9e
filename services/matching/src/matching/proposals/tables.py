"""Tables of proposals (migration 0002)."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from matching.tables import metadata

# A need proposed to one expert, and the expert's answer. One per need and expert.
proposals = Table(
    "proposals",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("need_id", Uuid, ForeignKey("needs.id", ondelete="CASCADE"), nullable=False),
    # NULL once the expert's data was erased (the row stays so that counts hold).
    Column("member_id", Uuid),
    # proposed -> accepted | declined | withdrawn
    Column("status", String(16), nullable=False, server_default="proposed"),
    Column("score", Float, nullable=False),
    # The ranking's reasons when proposed ([{"code", "text", ...}]); NULL after erasure.
    Column("reasons", JSONB),
    Column("proposed_by", Text, nullable=False),
    Column("proposed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("respond_by", Date),
    Column("answered_at", DateTime(timezone=True)),
    # unavailable | not_interested | conditions | other
    Column("decline_reason", String(32)),
    Column("decline_comment", Text),
    Column("withdrawn_at", DateTime(timezone=True)),
    # need_filled | need_cancelled | need_expired | member_erased | coordinator
    Column("withdraw_reason", String(32)),
    Column("erased_at", DateTime(timezone=True)),
    UniqueConstraint("need_id", "member_id", name="proposals_once_per_expert"),
    Index("proposals_member_idx", "member_id", "proposed_at"),
    Index("proposals_need_idx", "need_id", "status"),
)
