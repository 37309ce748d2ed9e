"""Request and response models of the agreements register."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from diaspora_service.text import MultiLine, SingleLine
from returnees.agreements.domain import Stage

Line = Annotated[SingleLine, StringConstraints(min_length=1, max_length=300)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Quota(_Body):
    occupation: Line = Field(description="An ISCO-08 code or an occupation's name.")
    per_year: Annotated[int, Field(ge=0, le=10_000_000)]


class Document(_Body):
    title: Line
    reference: Line | None = None
    dated_on: date | None = None


class NewAgreement(_Body):
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
    title: Line
    stage: Stage = "identified"
    sectors: Annotated[list[Line], Field(max_length=50)] = []
    quotas: Annotated[list[Quota], Field(max_length=200)] = []
    documents: Annotated[list[Document], Field(max_length=200)] = []


class StageChange(_Body):
    stage: Stage
    on: date | None = Field(default=None, description="Date of signature or entry into force.")
    note: Annotated[MultiLine, StringConstraints(max_length=2000)] | None = None


class StageEntry(BaseModel):
    from_stage: str | None
    to_stage: str
    at: datetime
    by_subject: str
    note: str | None


class AgreementView(BaseModel):
    id: UUID
    country: str
    title: str
    stage: str
    allowed_stages: list[str]
    sectors: list[str]
    quotas: list[Quota]
    documents: list[Document]
    signed_on: date | None
    in_force_on: date | None
    created_at: datetime
    updated_at: datetime
    version: int
    history: list[StageEntry] | None = None


class AgreementPage(BaseModel):
    items: list[AgreementView]
