"""Requests and answers of identity verification over HTTP."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from diaspora_events.contracts import registry as snapshot
from diaspora_service.text import MultiLine, SingleLine
from registry.identity.domain import Evidence, IdentityDocumentType, IdentityMethod

_DOCUMENT_NUMBER = re.compile(r"[A-Z0-9][A-Z0-9/-]{2,39}")


class VerificationRequest(BaseModel):
    """The evidence an officer checked. ``document_in_person``: the document seen at the
    embassy (level ``in_person``); ``document_upload``: a copy checked remotely (level
    ``document_checked``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    method: IdentityMethod
    document_type: IdentityDocumentType
    document_number: SingleLine = Field(
        min_length=3,
        max_length=40,
        examples=["TG1234567"],
        description="Encrypted at rest, never in events or logs; shown to the person only.",
    )
    document_expires_on: date = Field(description="Must not have passed.")
    seen_on: date = Field(description="When the officer saw the document (not in the future).")
    note: Annotated[MultiLine, Field(min_length=1, max_length=500)] | None = Field(
        None, description="Kept in the registry only (never in events)."
    )

    @field_validator("document_number")
    @classmethod
    def _number(cls, value: str) -> str:
        compact = re.sub(r"\s+", "", value).upper()
        if not _DOCUMENT_NUMBER.fullmatch(compact):
            raise ValueError("a document number has 3 to 40 letters, digits, '-' or '/'")
        return compact

    def evidence(self) -> Evidence:
        return Evidence(
            method=self.method,
            document_type=self.document_type,
            document_number=self.document_number,
            document_expires_on=self.document_expires_on,
            seen_on=self.seen_on,
            note=self.note,
        )


class VerificationView(BaseModel):
    """One check as recorded."""

    id: UUID
    level: snapshot.IdentityLevel
    method: IdentityMethod
    document_type: str
    document_number: str | None = Field(
        None, description="Only for the person (encrypted at rest; never shown to staff)."
    )
    document_expires_on: date
    seen_on: date
    note: str | None = None
    embassy_id: str
    verified_by: str = Field(description="The officer's subject at the identity provider.")
    verified_by_role: str
    verified_at: datetime


class RecordedVerification(BaseModel):
    verification: VerificationView
    identity: snapshot.IdentityVerification = Field(
        description="The record's level after this check (a weaker check never lowers it)."
    )
    version: int = Field(description="The record's new version, also its ETag.")


class VerificationHistory(BaseModel):
    identity: snapshot.IdentityVerification | None = Field(
        None, description="The level today: the strongest check whose document has not expired."
    )
    items: list[VerificationView] = Field(description="Every check recorded, newest first.")
