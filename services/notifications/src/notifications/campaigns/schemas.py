"""Campaign segments and the requests and answers of the campaign routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from diaspora_service.text import SingleLine
from notifications.templates.schemas import Variables

# Codes, not free text: their JSON Schema says so (and refuses control characters).
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")]
LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")]
IscoCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,4}$")]


class Segment(BaseModel):
    """Who a campaign reaches. Every given criterion must hold (AND); values within one
    criterion are alternatives (OR). An empty segment is everyone (minus opt-outs)."""

    model_config = ConfigDict(extra="forbid")

    countries: list[CountryCode] = Field(
        default_factory=list, description="ISO 3166-1 alpha-2 codes."
    )
    languages: list[LanguageCode] = Field(
        default_factory=list, description="ISO 639-1 or 639-3 codes."
    )
    occupations: list[IscoCode] = Field(default_factory=list, description="ISCO-08 codes.")
    newsletter_consent: bool | None = Field(
        default=None, description="true: only people who consented to newsletters."
    )
    # Attributes the registry adds later (kept in recipients.attributes): name -> values.
    attributes: dict[SingleLine, list[SingleLine]] = Field(default_factory=dict)
    subscribers: bool = Field(
        default=False,
        description=(
            "Also the awareness subscribers (people in Togo who subscribed through the "
            "returnees service and confirmed their address) who asked for awareness "
            "messages; only for templates of the `awareness` category. Of the criteria "
            "above only `languages` applies to them; each message to them ends with their "
            "unsubscribe link."
        ),
    )
    members: bool = Field(
        default=True, description="false: the subscribers only (with `subscribers: true`)."
    )

    @field_validator("countries")
    @classmethod
    def _upper(cls, value: list[str]) -> list[str]:
        return [v.strip().upper() for v in value]


class AudienceIn(BaseModel):
    template: SingleLine
    segment: Segment = Field(default_factory=Segment)


class AudienceOut(BaseModel):
    audience: int
    category: str


class CampaignIn(AudienceIn):
    name: SingleLine = Field(min_length=1, max_length=200)
    variables: Variables = Field(
        default_factory=dict, description="Values of the template's variables (not the person's)."
    )
    rate_per_second: int | None = Field(default=None, ge=1, le=100_000)
    send_at: datetime | None = Field(default=None, description="Schedules it; else a draft.")


class ScheduleIn(BaseModel):
    send_at: datetime = Field(description="When to start sending (timezone-aware).")


class CampaignOut(BaseModel):
    id: UUID
    name: str
    template: str
    variables: dict[str, Any]
    segment: dict[str, Any]
    rate_per_second: int
    status: str
    send_at: datetime | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    audience: int | None
    progress: dict[str, Any] | None = None


class CampaignPage(BaseModel):
    items: list[CampaignOut]
    next_before: datetime | None
