"""Requests and answers of the preferences and inbox routes (``/me``)."""

from __future__ import annotations

from datetime import datetime, time
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from diaspora_service.text import SingleLine


class QuietHours(BaseModel):
    start: time = Field(description="Local time in the person's zone, e.g. 22:00.")
    end: time = Field(description="Local time; may be the next morning, e.g. 07:00.")


class CategoryOut(BaseModel):
    name: str
    description: str
    mandatory: bool
    needs_consent: bool


class PreferencesIn(BaseModel):
    channels: list[Literal["email", "sms", "inbox"]] = Field(
        min_length=1, description="In order of preference; the next one is the fallback."
    )
    timezone: SingleLine | None = Field(
        default=None, description="IANA zone; null: from the country."
    )
    quiet_hours: QuietHours | None = None
    opted_out: list[SingleLine] = Field(default_factory=list)
    consents: list[SingleLine] = Field(default_factory=list)


class PreferencesOut(PreferencesIn):
    effective_timezone: str
    categories: list[CategoryOut]


class InboxMessageOut(BaseModel):
    id: UUID
    category: str
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None


class InboxPage(BaseModel):
    items: list[InboxMessageOut]
    unread: int
    next_before: datetime | None
