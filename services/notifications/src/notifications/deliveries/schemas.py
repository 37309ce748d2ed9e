"""Answers of the delivery log and resend routes."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field


class DeliveryOut(BaseModel):
    id: UUID
    recipient_id: UUID | None
    channel: str
    template: str
    template_version: int | None
    category: str
    language: str
    subject: str | None
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None
    reason: str = Field(
        description="event, campaign, fallback (after a permanent failure) or resend"
    )
    previous_id: UUID | None = Field(
        description="The delivery this one falls back from or resends."
    )
    campaign_id: UUID | None


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_before: datetime | None


class ResendOut(BaseModel):
    id: UUID
    previous_id: UUID
    channel: str
    status: str
