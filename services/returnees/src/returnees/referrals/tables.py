"""Referrals of a case's need to a partner, and the history of their status.

A referral names its case by ``case_id`` only (no foreign key: cases are their own
feature) and carries the little the partner needs of it: the need, its priority, the
prefecture, the returnee's language and the case worker's note. Nothing of the case's
sensitive fields (health, psychosocial, vulnerabilities) is ever copied here.
"""

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
    Uuid,
    func,
    text,
)

from returnees.tables import metadata

referrals = Table(
    "referrals",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("case_id", Uuid, nullable=False),
    # The returnee's registry member id (they follow the status of their referrals).
    Column("member_id", Uuid),
    Column("partner_id", Uuid, ForeignKey("partners.id"), nullable=False),
    # The partner's `partner_org` at the time of referral (the partner scope's column).
    Column("partner_org", Text, nullable=False),
    Column("need", Text, nullable=False),
    Column("priority", Text, nullable=False),
    Column("prefecture", Text, nullable=False),
    Column("region", Text, nullable=False),
    Column("language", Text),
    Column("note", Text),
    Column("status", Text, nullable=False, server_default="referred"),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("referred_by", Text, nullable=False),
    Column("referred_at", DateTime(timezone=True), nullable=False),
    Column("acknowledge_by", DateTime(timezone=True), nullable=False),
    Column("complete_by", DateTime(timezone=True), nullable=False),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    # The partner's report (done) or reason (refused, cancelled).
    Column("outcome", Text),
    # The SLA job's flags, once per stage.
    Column("acknowledge_escalated_at", DateTime(timezone=True)),
    Column("complete_escalated_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("referrals_partner_idx", "partner_org", "status", "referred_at"),
    Index("referrals_case_idx", "case_id", "referred_at"),
    Index("referrals_member_idx", "member_id", "referred_at"),
    # One open referral of a case's need to a partner at a time.
    Index(
        "referrals_one_open_idx",
        "case_id",
        "need",
        "partner_id",
        unique=True,
        postgresql_where=text("status IN ('referred', 'acknowledged')"),
    ),
    # The cell's escalated open referrals in the list's order (0007_dashboard_indexes).
    Index(
        "referrals_escalated_open_idx",
        "acknowledge_by",
        "referred_at",
        "id",
        postgresql_where=text(
            "status IN ('referred', 'acknowledged') AND "
            "(acknowledge_escalated_at IS NOT NULL OR complete_escalated_at IS NOT NULL)"
        ),
    ),
    Index(
        "referrals_sla_idx",
        "complete_by",
        postgresql_where=text("status IN ('referred', 'acknowledged')"),
    ),
)

referral_history = Table(
    "referral_history",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("referral_id", Uuid, ForeignKey("referrals.id", ondelete="CASCADE"), nullable=False),
    Column("action", Text, nullable=False),
    Column("from_status", Text),
    Column("to_status", Text, nullable=False),
    Column("reason", Text),
    Column("actor_subject", Text, nullable=False),
    Column("actor_side", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("referral_history_referral_idx", "referral_id", "id"),
)
