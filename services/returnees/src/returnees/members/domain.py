"""What the return cell knows of a registry member, in plain Python."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class Person:
    member_id: UUID
    given_name: str
    family_name: str
    email: str | None
    phone: str | None
    preferred_language: str
    country_of_residence: str

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}"
