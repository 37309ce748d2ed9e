"""Request and response models of cases' HTTP interface."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from diaspora_service.text import MultiLine, SingleLine
from returnees.cases.domain import (
    Action,
    NeedArea,
    Origin,
    Outcome,
    Priority,
    Reason,
    Status,
    Vulnerability,
)

CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Notes = Annotated[MultiLine, StringConstraints(max_length=4000)]
Subject = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Intake(_Body):
    return_date: date | None = Field(default=None, description="The day the returnee arrived.")
    expected_arrival: date | None = None
    country_from: CountryCode | None = Field(
        default=None, description="ISO 3166-1 alpha-2 of the country returned from."
    )
    reason: Reason | None = None
    prefecture: Annotated[SingleLine, StringConstraints(min_length=2, max_length=60)] | None = (
        Field(
            default=None,
            description="Where the returnee settles: a prefecture of Togo (slug, name or "
            "former name; accents and case ignored). Its region is derived.",
            examples=["golfe"],
        )
    )
    vulnerabilities: Annotated[list[Vulnerability], Field(max_length=8)] | None = Field(
        default=None, description="Sensitive: sealed at rest, shown to the assigned case worker."
    )
    vulnerability_notes: Notes | None = Field(default=None, description="Sensitive.")


class NewCase(Intake):
    """A case opened by a case worker (``member_id`` of the returnee, if registered) or a
    pre-return declaration by the returnee (citizen token; their own member id)."""

    member_id: UUID | None = None


class Need(_Body):
    area: NeedArea
    priority: Priority
    met: bool = False


class NeedsAssessment(_Body):
    needs: Annotated[list[Need], Field(min_length=1, max_length=8)]
    health_notes: Notes | None = Field(default=None, description="Sensitive.")
    psychosocial_notes: Notes | None = Field(default=None, description="Sensitive.")


class Milestone(_Body):
    title: Annotated[SingleLine, StringConstraints(min_length=1, max_length=200)]
    due_on: date
    done_on: date | None = None


class Plan(_Body):
    milestones: Annotated[list[Milestone], Field(min_length=1, max_length=50)]


class Closure(_Body):
    outcome: Outcome
    notes: Notes | None = None


class FollowUpRecord(_Body):
    done_on: date
    notes: Notes | None = None


class Assignment(_Body):
    case_worker: Subject = Field(description="The case worker's subject (token `sub`).")


class SensitiveView(BaseModel):
    vulnerabilities: list[str]
    vulnerability_notes: str | None
    health_notes: str | None
    psychosocial_notes: str | None


class FollowUpView(BaseModel):
    months: int
    due_on: date
    done_on: date | None
    notes: str | None
    overdue: bool


class ReturneeView(BaseModel):
    given_name: str
    family_name: str
    email: str | None
    phone: str | None
    preferred_language: str
    country_of_residence: str


class CaseReferral(BaseModel):
    """A referral of one of the case's needs, as the case shows it (the returnee too):
    the need, the partner, the status and its dates; not the notes."""

    id: UUID
    need: str
    partner_id: UUID
    partner_name: str
    status: str
    referred_at: datetime
    acknowledged_at: datetime | None
    closed_at: datetime | None


class CaseView(BaseModel):
    id: UUID
    member_id: UUID | None
    returnee: ReturneeView | None = Field(
        description="The returnee as the registry knows them (people read model)."
    )
    origin: Origin
    application_id: UUID | None
    status: Status
    allowed_actions: list[Action]
    assigned_to: str | None
    opened_at: datetime
    expected_arrival: date | None
    return_date: date | None
    country_from: str | None
    reason: str | None
    prefecture: str | None = Field(description="Where the returnee settles (slug).")
    region: str | None = Field(description="Its region (ISO 3166-2:TG).")
    needs: list[Need]
    milestones: list[Milestone]
    follow_ups: list[FollowUpView]
    outcome: str | None
    outcome_notes: str | None
    closed_at: datetime | None
    version: int
    referrals: list[CaseReferral] = Field(
        description="The referrals of the case's needs to partners, oldest first."
    )
    sensitive: SensitiveView | None = Field(
        description=(
            "Health, psychosocial and vulnerability fields: only for the case worker the "
            "case is assigned to (null otherwise; `sensitive_withheld` says why)."
        )
    )
    sensitive_withheld: str | None = Field(
        description=(
            "Why `sensitive` is null although the case may hold such fields: "
            "`not_assigned_case_worker`, or `erased` (the person's key is destroyed)."
        )
    )


class CasePage(BaseModel):
    items: list[CaseView]
    limit: int
    offset: int
