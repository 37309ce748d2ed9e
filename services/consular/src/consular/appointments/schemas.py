"""Request and response models of appointments' HTTP interface."""

from __future__ import annotations

from datetime import date, datetime, time
from itertools import pairwise
from typing import Annotated, Literal, Self
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from consular.appointments.domain import WEEKDAYS

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Label = Annotated[str, Field(max_length=120, pattern=r"^[^\x00-\x1f\x7f]*$")]


class OpeningHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: time = Field(description="Local wall-clock time, e.g. 09:00.")
    end: time

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("opening hours are local wall-clock times, without an offset")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class ClosureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: date
    end: date | None = Field(default=None, description="Inclusive; omitted: one day.")
    label: Label = ""

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end is not None and self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class SlotTemplateIn(BaseModel):
    """An embassy's template: its slots are computed from it (nothing is generated ahead)."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = Field(
        max_length=64, pattern=r"^[A-Za-z0-9_+/-]+$", description="IANA zone, e.g. Europe/Paris."
    )
    slot_minutes: int = Field(ge=5, le=480)
    capacity: int = Field(ge=1, le=10_000, description="People received per slot.")
    weekly_hours: dict[Weekday, list[OpeningHours]] = Field(
        description="Opening hours per weekday (local time); a weekday absent is closed."
    )
    closures: list[ClosureIn] = Field(default_factory=list, max_length=400)
    valid_from: date
    valid_to: date | None = None
    horizon_days: int = Field(
        default=90, ge=1, le=366, description="How many days ahead slots may be booked."
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value not in available_timezones():
            raise ValueError("not an IANA time zone")
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not an IANA time zone") from None
        return value

    @field_validator("weekly_hours")
    @classmethod
    def _no_overlap(cls, value: dict[str, list[OpeningHours]]) -> dict[str, list[OpeningHours]]:
        for day, hours in value.items():
            if len(hours) > 12:
                raise ValueError(f"{day}: at most 12 opening periods")
            ordered = sorted(hours, key=lambda h: h.start)
            for before, after in pairwise(ordered):
                if after.start < before.end:
                    raise ValueError(f"{day}: opening periods overlap")
        return {d: sorted(value[d], key=lambda h: h.start) for d in WEEKDAYS if d in value}

    @model_validator(mode="after")
    def _validity(self) -> Self:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError("valid_to must not be before valid_from")
        return self


class SlotTemplateView(SlotTemplateIn):
    model_config = ConfigDict(extra="ignore")

    embassy_id: str
    version: int
    created_by: str | None = Field(default=None, description="Shown to staff only.")
    created_at: datetime


class SlotView(BaseModel):
    start: datetime = Field(description="UTC.")
    end: datetime
    local_start: datetime = Field(description="The same instant in the embassy's zone.")
    local_end: datetime
    capacity: int
    available: int


class SlotList(BaseModel):
    embassy_id: str
    timezone: str
    template_version: int
    items: list[SlotView]


class NewAppointment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    application_id: UUID
    slot_start: AwareDatetime = Field(description="A slot's start, with its offset.")


class Reschedule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slot_start: AwareDatetime


class Cancellation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Label | None = None


class AppointmentView(BaseModel):
    id: UUID
    application_id: UUID
    applicant_id: UUID | None
    embassy_id: str
    status: Literal["booked", "cancelled"]
    slot_start: datetime = Field(description="UTC.")
    slot_end: datetime
    local_start: datetime = Field(description="In the embassy's zone.")
    local_end: datetime
    timezone: str
    version: int
    created_at: datetime
    updated_at: datetime
    cancelled_at: datetime | None
    cancel_reason: str | None
