"""Request and response models of the applications' HTTP interface."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from consular.applications.domain import Status
from consular.catalogue.domain import CODE
from diaspora_service.text import MultiLine, SingleLine

Answers = dict[str, Any]


class NewApplication(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service_type: str = Field(pattern=CODE, examples=["consular_card"])
    answers: Answers = Field(
        default_factory=dict,
        max_length=60,
        description="Answers to the type's form (field name -> value), complete or not.",
    )


class TransitionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    action: Literal[
        "submit",
        "start_review",
        "request_information",
        "resubmit",
        "approve",
        "reject",
        "issue",
        "mark_collected",
        "withdraw",
    ]
    reason: MultiLine | None = Field(
        None,
        max_length=2000,
        description="Why (required to request information and to reject).",
    )
    answers: Answers | None = Field(
        None,
        max_length=60,
        description="New answers, replacing the old ones (submit and resubmit only).",
    )


class AssignmentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    assignee: SingleLine | None = Field(
        None,
        max_length=200,
        description='The officer\'s subject ("me" for yourself); null: nobody.',
    )


class HistoryEntry(BaseModel):
    action: str
    from_status: Status | None
    to_status: Status
    reason: str | None
    actor_role: str
    actor_subject: str | None = Field(None, description="Staff only.")
    at: datetime


class ApplicantSummary(BaseModel):
    given_name: str
    family_name: str
    email: str | None
    preferred_language: str
    identity_verified: bool


class ApplicationView(BaseModel):
    id: UUID
    applicant_id: UUID | None = Field(
        description="The applicant's registry member id (null: a visitor, e-visa)."
    )
    applicant: ApplicantSummary | None = Field(
        None, description="The applicant as the registry knows them (staff only)."
    )
    service_type: str
    catalogue_version: int
    embassy_id: str | None
    status: Status
    answers: Answers
    assigned_to: str | None
    created_at: datetime
    submitted_at: datetime | None
    due_at: datetime | None
    overdue: bool = Field(description="Past its due date while the embassy is to act.")
    escalated_at: datetime | None = Field(
        description="When it was flagged overdue and escalated to the ministry."
    )
    decided_at: datetime | None
    reference: str | None = Field(description="The decision's reference, given at approval.")
    version: int
    allowed_actions: list[str] = Field(description="What the caller may do next.")
    history: list[HistoryEntry] | None = None


class ApplicationPage(BaseModel):
    items: list[ApplicationView]
    total: int
    next_offset: int | None
