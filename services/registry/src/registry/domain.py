"""What a registration is, independent of HTTP and SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal
from uuid import UUID

import phonenumbers
import pycountry

Language = Literal["fr", "en"]


class InvalidRegistration(ValueError):
    pass


def normalise_country(code: str) -> str:
    """An ISO 3166-1 alpha-2 code, upper case; raises for unknown codes."""
    candidate = code.strip().upper()
    if len(candidate) != 2 or pycountry.countries.get(alpha_2=candidate) is None:
        raise InvalidRegistration(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return candidate


def normalise_phone(number: str) -> str:
    """The number in E.164 form; it must be given in international form (+...)."""
    try:
        parsed = phonenumbers.parse(number.strip(), None)
    except phonenumbers.NumberParseException as error:
        raise InvalidRegistration(
            f"{number!r} is not a phone number in international form (+228...): {error}"
        ) from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidRegistration(f"{number!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def check_birth_date(value: date, *, today: date | None = None) -> date:
    today = today or datetime.now(UTC).date()
    if value > today:
        raise InvalidRegistration("date of birth is in the future")
    if today.year - value.year > 130:
        raise InvalidRegistration("date of birth is more than 130 years ago")
    return value


@dataclass(frozen=True)
class RegisterMember:
    """Command: register a person in the registry."""

    given_name: str
    family_name: str
    date_of_birth: date
    country_of_residence: str
    email: str
    phone: str
    preferred_language: Language = "fr"
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Member:
    id: UUID
    given_name: str
    family_name: str
    date_of_birth: date
    country_of_residence: str
    email: str
    phone: str
    preferred_language: Language
    registered_at: datetime
    embassy_id: str
    # The person's subject at the identity provider, when they registered themselves.
    owner_subject: str | None = None
    # Who filed it, when someone else did (assisted registration by an embassy officer).
    registered_by: str | None = None
    registered_by_role: str | None = None
