"""Request and response models of difficulty reports' HTTP interface."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

import pycountry
from pydantic import BaseModel, ConfigDict, Field, field_validator

from consular.reports.domain import Side, Status
from diaspora_service.text import MultiLine, SingleLine

CATEGORY_CODE = r"^[a-z][a-z0-9_]{1,39}$"
ConsentMethod = Literal["in_person", "phone", "written", "email", "video_call"]


class Labels(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    fr: SingleLine = Field(min_length=1, max_length=120)
    en: SingleLine = Field(min_length=1, max_length=120)


class CategoryEdit(BaseModel):
    """A category as the ministry sets it (a new version of it)."""

    model_config = ConfigDict(extra="forbid")

    labels: Labels
    active: bool = True
    target_days: int = Field(ge=1, le=365, description="Days the embassy has to resolve (SLA).")
    position: int = Field(100, ge=0, le=10_000, description="Order in the list.")


class CategoryView(CategoryEdit):
    code: str
    version: int
    updated_at: datetime


class CategoryList(BaseModel):
    items: list[CategoryView]


class Attachment(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reference: SingleLine = Field(
        min_length=1,
        max_length=300,
        description="A reference to a document held elsewhere (uploads are not wired yet).",
    )
    name: SingleLine | None = Field(None, max_length=200)


class Consent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: ConsentMethod = Field(description="How the person gave their consent.")
    given_at: datetime = Field(description="When (with a time zone).")

    @field_validator("given_at")
    @classmethod
    def _aware_and_past(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a time zone (e.g. 2026-12-07T10:00:00Z)")
        if value > datetime.now(UTC):
            raise ValueError("is in the future")
        return value


class OnBehalf(BaseModel):
    """A focal point files for a person (their registry member id), with their consent."""

    model_config = ConfigDict(extra="forbid")

    member_id: UUID
    consent: Consent


class NewReport(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    category: str = Field(pattern=CATEGORY_CODE, examples=["documents"])
    country: str = Field(
        min_length=2,
        max_length=2,
        pattern=r"^[A-Za-z]{2}$",
        description="Where the difficulty happened (ISO 3166-1 alpha-2).",
        examples=["FR"],
    )
    description: MultiLine = Field(min_length=10, max_length=10_000)
    attachments: list[Attachment] = Field(default_factory=list, max_length=20)
    on_behalf_of: OnBehalf | None = Field(
        None, description="Focal points only: the person and their consent."
    )

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        code = value.upper()
        if not code.isalpha() or pycountry.countries.get(alpha_2=code) is None:
            raise ValueError("must be an ISO 3166-1 alpha-2 country code (e.g. FR)")
        return code


class TransitionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    action: Literal[
        "start", "request_information", "resume", "resolve", "reopen", "close", "withdraw"
    ]
    reason: MultiLine | None = Field(
        None, max_length=2000, description="Why (required to request information, to resolve)."
    )


class NewMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    body: MultiLine = Field(min_length=1, max_length=5000)


class MessageView(BaseModel):
    author_side: Side
    author_subject: str | None = Field(None, description="Staff only.")
    body: str
    at: datetime


class HistoryEntry(BaseModel):
    action: str
    from_status: Status | None
    to_status: Status
    reason: str | None
    actor_role: str
    actor_subject: str | None = Field(None, description="Staff only.")
    at: datetime


class ConsentView(BaseModel):
    method: str
    given_at: datetime


class ReportView(BaseModel):
    id: UUID
    reporter_id: UUID | None
    category: str
    country: str
    embassy_id: str = Field(description="The embassy whose focal point handles it.")
    description: str
    attachments: list[Attachment]
    status: Status
    filed_on_behalf: bool
    filed_by_subject: str | None = Field(None, description="Staff only.")
    consent: ConsentView | None = Field(None, description="When filed on the person's behalf.")
    created_at: datetime
    due_at: datetime
    overdue: bool = Field(description="Past its due date while the staff is to act.")
    escalated_at: datetime | None = Field(description="When escalated to the ministry.")
    resolved_at: datetime | None
    version: int
    allowed_actions: list[str] = Field(description="What the caller may do next.")
    messages: list[MessageView] | None = None
    history: list[HistoryEntry] | None = None


class ReportPage(BaseModel):
    items: list[ReportView]
    total: int
    next_offset: int | None


Dimension = Literal["country", "category", "month"]


class CountCell(BaseModel):
    country: str | None = None
    category: str | None = None
    month: str | None = Field(None, description="YYYY-MM (UTC) of filing.")
    reports: int | None = Field(description="null when suppressed (small cell)")
    suppressed: bool


class CountTable(BaseModel):
    by: list[Dimension]
    exact: bool
    threshold: int = Field(description="Cells under this count are suppressed unless exact")
    total: int | None = Field(description="Reports in the filters (null if small)")
    cells: list[CountCell]
