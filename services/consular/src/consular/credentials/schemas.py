"""Request and response models of the credentials' HTTP interface."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from consular.credentials.domain import CredentialType, Status
from diaspora_service.text import MultiLine

# A JWS compact token: three base64url parts.
TOKEN_PATTERN = r"^[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$"  # noqa: S105
# What the verification page accepts from its form: base64url parts and dots, with the
# whitespace a copy and paste brings around them.
PASTED_TOKEN_PATTERN = r"^\s*[A-Za-z0-9_.-]*\s*$"  # noqa: S105
TOKEN_MAX = 8000


class CredentialView(BaseModel):
    id: UUID
    application_id: UUID
    credential_type: CredentialType
    holder_id: UUID | None = Field(description="The holder's member id (null: a visitor).")
    embassy_id: str = Field(description="The issuing embassy.")
    kid: str = Field(description="The key that signed it.")
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revocation_reason: str | None = Field(None, description="Staff only.")


class CredentialList(BaseModel):
    items: list[CredentialView]


class RevocationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: MultiLine = Field(min_length=3, max_length=2000, description="Why (audited).")


class RevokedEntry(BaseModel):
    id: UUID
    revoked_at: datetime


class RevocationList(BaseModel):
    issuer: str
    revoked: list[RevokedEntry] = Field(description="Every revoked credential, oldest first.")


class VerificationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(
        max_length=TOKEN_MAX,
        pattern=TOKEN_PATTERN,
        description="The token as read from the QR code.",
    )


class Verification(BaseModel):
    status: Status = Field(description="valid, revoked, forged or expired.")
    reason: str
    kid: str | None = None
    credential_id: str | None = None
    credential_type: str | None = None
    issuing_embassy: str | None = None
    application_reference: str | None = None
    holder: dict[str, Any] | None = Field(
        None, description="What the token says of its holder (a genuine token only)."
    )
    issued_at: datetime | None = None
    expires_at: datetime | None = None
