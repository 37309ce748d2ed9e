"""Requests and answers of the contact verification routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from diaspora_service.text import SingleLine


class LinkConfirmIn(BaseModel):
    token: SingleLine = Field(min_length=16, max_length=200)


class CodeConfirmIn(BaseModel):
    code: SingleLine = Field(pattern=r"^[0-9]{6}$")


class VerifiedOut(BaseModel):
    kind: Literal["email", "phone"]
    verified_at: datetime


class ContactOut(BaseModel):
    address: str | None
    verified: bool


class ContactsOut(BaseModel):
    email: ContactOut
    phone: ContactOut


class VerificationSentOut(BaseModel):
    kind: Literal["email", "phone"]
    delivery_id: UUID
