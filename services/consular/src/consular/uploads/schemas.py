"""What the documents' routes answer."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class DocumentView(BaseModel):
    """An uploaded document (its bytes: ``GET .../documents/{id}``)."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    kind: str = Field(
        description="An application's: the catalogue's required-document code; a report's: "
        "`attachment`.",
        examples=["photo"],
    )
    filename: str | None = Field(description="The name it was uploaded with (shown only).")
    content_type: str = Field(description="Detected from the bytes: PDF, JPEG or PNG.")
    size: int
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    uploaded_by_role: str
    uploaded_by: str | None = Field(
        default=None, description="The uploader's subject (shown to staff only)."
    )
    uploaded_at: datetime


class DocumentList(BaseModel):
    items: list[DocumentView]
