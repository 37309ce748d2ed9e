"""What makes evidence acceptable for an identity check (plain rules, no framework)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from registry.members.identity_level import LEVEL_OF_METHOD

IdentityMethod = Literal["document_in_person", "document_upload"]
# Identity documents with a photograph and an expiry date that an embassy checks.
IdentityDocumentType = Literal["passport", "national_id_card", "consular_card"]
IDENTITY_DOCUMENT_TYPES: tuple[str, ...] = ("passport", "national_id_card", "consular_card")


@dataclass(frozen=True)
class Evidence:
    """What the officer checked."""

    method: IdentityMethod
    document_type: IdentityDocumentType
    document_number: str
    document_expires_on: date
    seen_on: date
    note: str | None = None

    @property
    def level(self) -> str:
        return LEVEL_OF_METHOD[self.method]


class InvalidEvidence(ValueError):
    """Evidence that cannot prove who the person is today (names the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_evidence(evidence: Evidence, today: date) -> None:
    """Refuse a check that proves nothing now: a document seen in the future, or expired
    (a document seen on or before today and valid today was valid when seen)."""
    if evidence.seen_on > today:
        raise InvalidEvidence("seen_on", "the date the document was seen is in the future")
    if evidence.document_expires_on < today:
        raise InvalidEvidence(
            "document_expires_on",
            "the document has expired: an expired document does not verify an identity",
        )
