"""Request and response models of the country lists' HTTP interface."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from diaspora_service.text import MultiLine, SingleLine
from returnees.countries import domain

COUNTRY = r"^[A-Z]{2}$"
Country = Annotated[str, Field(pattern=COUNTRY, examples=["SA"], description="ISO 3166-1 alpha-2")]
Short = Annotated[SingleLine, Field(min_length=1, max_length=200)]
Url = Annotated[SingleLine, Field(pattern=r"^https?://[^\s]+$", max_length=2000)]


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Short
    url: Url | None = None


class LabourDemandEdit(BaseModel):
    """A labour-demand country as the ministry saves it (a new version each time)."""

    model_config = ConfigDict(extra="forbid")

    sectors: list[Short] = Field(min_length=1, max_length=50, examples=[["construction"]])
    occupations: list[Annotated[SingleLine, Field(max_length=4)]] = Field(
        max_length=200,
        description="ISCO-08 codes (major group to unit group) of the reference data shipped.",
        examples=[["7112", "5322"]],
    )
    sources: list[Source] = Field(min_length=1, max_length=50)
    last_reviewed_on: date
    notes: Annotated[MultiLine, Field(max_length=5000)] | None = None
    published: bool = Field(False, description="Shown to everyone (without a token) once true.")

    @field_validator("occupations")
    @classmethod
    def _isco(cls, codes: list[str]) -> list[str]:
        wrong = domain.occupation_problems(codes)
        if wrong:
            raise ValueError("; ".join(f"occupations[{i}]: {why}" for i, why in wrong))
        return sorted(set(codes))

    @field_validator("last_reviewed_on")
    @classmethod
    def _not_in_future(cls, value: date) -> date:
        if value > date.today():
            raise ValueError("the last review cannot be in the future")
        return value


class Occupation(BaseModel):
    code: str
    label_fr: str | None
    label_en: str | None


class LabourDemandView(BaseModel):
    country: str
    sectors: list[str]
    occupations: list[Occupation]
    sources: list[Source]
    last_reviewed_on: date
    notes: str | None = None
    published: bool
    version: int
    updated_at: datetime
    updated_by: str | None = Field(None, description="Staff only.")


class LabourDemandList(BaseModel):
    items: list[LabourDemandView]


class LabourDemandVersion(BaseModel):
    version: int
    changed_by: str
    changed_at: datetime
    snapshot: dict[str, Any]


class LabourDemandHistory(BaseModel):
    country: str
    versions: list[LabourDemandVersion]


class Texts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fr: Annotated[MultiLine, Field(min_length=1, max_length=2000)]
    en: Annotated[MultiLine, Field(min_length=1, max_length=2000)]


class Titles(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fr: Short
    en: Short


class WatchlistProposal(BaseModel):
    """A country proposed for the watchlist, with its advisory's level and text."""

    model_config = ConfigDict(extra="forbid")

    country: Country
    level: domain.Level
    title: Titles
    text: Texts
    rationale: Annotated[MultiLine, Field(min_length=1, max_length=5000)]
    sources: list[Source] = Field(default_factory=list, max_length=50)

    @field_validator("country")
    @classmethod
    def _iso(cls, code: str) -> str:
        problem = domain.country_problem(code)
        if problem:
            raise ValueError(problem)
        return code


class TransitionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: domain.Action
    reason: Annotated[MultiLine, Field(max_length=2000)] | None = None


class HistoryEntry(BaseModel):
    action: str
    from_status: str | None
    to_status: str
    actor: str
    reason: str | None
    at: datetime


class EvidenceCell(BaseModel):
    category: str
    reports: int | None = Field(description="Null: fewer than 5 (suppressed) for analysts.")


class CaseEvidenceCell(BaseModel):
    reason: str
    cases: int | None = Field(description="Null: fewer than 5 (suppressed) for analysts.")


class Evidence(BaseModel):
    country: str
    difficulty_reports: list[EvidenceCell]
    cases: list[CaseEvidenceCell] = Field(
        description="Returnees' cases from the country whose reason for return indicates "
        "rights violations, per reason (`cases_rule`)."
    )
    cases_rule: str
    exact: bool


class WatchlistView(BaseModel):
    id: UUID
    country: str
    level: str
    status: Literal["draft", "under_review", "published", "withdrawn"]
    title: Titles
    text: Texts
    published_at: datetime | None
    withdrawn_at: datetime | None
    # Staff only:
    rationale: str | None = None
    evidence: dict[str, Any] | None = None
    proposed_by: str | None = None
    reviewed_by: str | None = None
    version: int | None = None
    allowed_actions: list[str] | None = None
    history: list[HistoryEntry] | None = None


class WatchlistList(BaseModel):
    items: list[WatchlistView]
