"""Request and response models of the hand-over's HTTP interface."""

from __future__ import annotations

from datetime import datetime
from typing import Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from consular.handover.domain import Answer, Status
from diaspora_service.text import MultiLine, SingleLine


class AnswerRequest(BaseModel):
    """The authority's answer: `rejected` needs a `reason`, `produced` a `document_number`;
    `accepted` takes neither."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    answer: Answer
    reason: MultiLine | None = Field(None, min_length=1, max_length=2000)
    document_number: SingleLine | None = Field(
        None, min_length=1, max_length=60, pattern=r"^[A-Za-z0-9][A-Za-z0-9\-/]*$"
    )

    @model_validator(mode="after")
    def _fits_the_answer(self) -> Self:
        if self.answer == "rejected" and self.reason is None:
            raise ValueError("a rejection needs a reason")
        if self.answer == "produced" and self.document_number is None:
            raise ValueError("produced needs the document_number")
        if self.answer != "produced" and self.document_number is not None:
            raise ValueError("document_number is given only with produced")
        if self.answer == "accepted" and self.reason is not None:
            raise ValueError("accepted takes no reason")
        return self


class AnswerEntry(BaseModel):
    answer: Answer
    from_status: Status
    reason: str | None
    document_number: str | None
    at: datetime


class HandoverView(BaseModel):
    id: UUID
    application_id: UUID
    service_type: str
    embassy_id: str
    status: Status
    sent_at: datetime
    updated_at: datetime
    reason: str | None = Field(description="The authority's reason (rejected).")
    document_number: str | None = Field(description="The document produced.")
    kid: str
    package: str | None = Field(
        None,
        description="The signed package (JWS compact, EdDSA): to the authority and staff only.",
    )
    allowed_answers: list[Answer]
    answers: list[AnswerEntry]
