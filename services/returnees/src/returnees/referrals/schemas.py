"""Request and response models of referrals' HTTP interface."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from diaspora_service.text import MultiLine, SingleLine
from returnees.partners.domain import Need
from returnees.referrals.domain import Side, Stage, Status

Priority = Literal["high", "medium", "low"]


class NewReferral(BaseModel):
    """A case worker refers one need of a case to a partner."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    case_id: UUID = Field(
        description="The case (the returnee it is about, who follows the referral, is the "
        "case's; its prefecture too when the case records one)."
    )
    partner_id: UUID
    need: Need = Field(description="One of the needs the case's assessment lists.")
    priority: Priority = "medium"
    prefecture: SingleLine | None = Field(
        None,
        min_length=2,
        max_length=60,
        description=(
            "Where the returnee settles: a prefecture of Togo (slug or name). Only when the "
            "case records none (its intake's `prefecture`); otherwise the case's is used, "
            "and another one here is a 422."
        ),
        examples=["golfe"],
    )
    language: str | None = Field(
        None,
        pattern=r"^[a-z]{2,3}$",
        description="ISO 639 code the returnee speaks best (default: their registry "
        "record's preferred language).",
    )
    note: MultiLine | None = Field(
        None,
        max_length=2000,
        description=(
            "What the partner needs to know to act (never health, psychosocial or "
            "vulnerability details)."
        ),
    )


class TransitionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    action: Literal["acknowledge", "complete", "refuse", "cancel"]
    reason: MultiLine | None = Field(
        None,
        max_length=2000,
        description="Required to refuse or cancel; the outcome's note when completing.",
    )


class HistoryEntry(BaseModel):
    action: str
    from_status: Status | None
    to_status: Status
    reason: str | None
    actor_side: Side
    actor_subject: str | None = Field(None, description="Staff only.")
    at: datetime


class PartnerRef(BaseModel):
    id: UUID
    partner_org: str
    name: str


class ReferralView(BaseModel):
    """A referral as its reader may see it: the returnee sees its status (need, partner,
    dates), the cell and the partner's case workers all of it."""

    id: UUID
    case_id: UUID
    member_id: UUID | None
    partner: PartnerRef
    need: str
    status: Status
    referred_at: datetime
    acknowledge_by: datetime
    complete_by: datetime
    acknowledged_at: datetime | None
    closed_at: datetime | None
    outcome: str | None = Field(None, description="The partner's report or reason.")
    overdue: Stage | None = Field(None, description="The stage whose deadline has passed.")
    escalated: bool = Field(False, description="Escalated to the ministry (SLA).")
    version: int
    # What the partner's and the cell's case workers see besides.
    priority: str | None = None
    prefecture: str | None = None
    region: str | None = None
    language: str | None = None
    note: str | None = None
    referred_by: str | None = None
    acknowledge_escalated_at: datetime | None = None
    complete_escalated_at: datetime | None = None
    allowed_actions: list[str] = Field(default_factory=list)
    history: list[HistoryEntry] | None = None


class ReferralPage(BaseModel):
    items: list[ReferralView]
    total: int
    next_offset: int | None
