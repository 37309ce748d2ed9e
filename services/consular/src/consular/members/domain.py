"""What consular needs to know of an applicant, in plain Python."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True)
class Applicant:
    member_id: UUID
    given_name: str
    family_name: str
    email: str | None
    preferred_language: str
    country_of_residence: str
    embassy_id: str | None
    identity_level: str | None
    identity_verified_at: datetime | None

    @property
    def identity_verified(self) -> bool:
        return self.identity_level is not None

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}"
