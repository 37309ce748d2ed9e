"""What consular needs to know of an applicant, in plain Python."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
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
    # After this date the check no longer counts (the document seen has expired).
    identity_expires_on: date | None = None

    @property
    def identity_verified(self) -> bool:
        """An officer recorded a check (expired or not: see ``identity_expired``)."""
        return self.identity_level is not None

    def identity_expired(self, today: date) -> bool:
        """The recorded check no longer counts on ``today``."""
        return (
            self.identity_level is not None
            and self.identity_expires_on is not None
            and self.identity_expires_on < today
        )

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}"
