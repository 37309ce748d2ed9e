"""What a registration is, independent of HTTP and SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal
from uuid import UUID

import phonenumbers
import pycountry

from diaspora_reference import esco, isco, places
from registry.members.profile import (
    Availability,
    CityChoice,
    ConsentPurpose,
    ConsentRecorded,
    DocumentInput,
    Education,
    Experience,
    Occupation,
    PlaceOfBirth,
    PostalAddress,
    ResidenceStatus,
    Sex,
    Skill,
)

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


def check_arrival_year(value: int | None, *, today: date | None = None) -> int | None:
    if value is None:
        return None
    year = (today or datetime.now(UTC).date()).year
    if not 1900 <= value <= year:
        raise InvalidRegistration(f"arrival year {value} is not between 1900 and {year}")
    return value


@dataclass(frozen=True)
class RegisterMember:
    """Command: register a person in the registry.

    The first fields are those of the first release (still enough to register);
    the rest of the profile is optional.
    """

    given_name: str
    family_name: str
    date_of_birth: date
    country_of_residence: str
    email: str
    phone: str
    preferred_language: Language = "fr"
    idempotency_key: str | None = None
    sex: Sex = "unspecified"
    place_of_birth: PlaceOfBirth | None = None
    documents: tuple[DocumentInput, ...] = ()
    postal_address: PostalAddress | None = None
    city: CityChoice | None = None
    arrival_year: int | None = None
    residence_status: ResidenceStatus | None = None
    languages: tuple[str, ...] = ()
    occupations: tuple[Occupation, ...] = ()
    skills: tuple[Skill, ...] = ()
    education: tuple[Education, ...] = ()
    experience: tuple[Experience, ...] = ()
    availability: Availability | None = None
    # Purposes the person agrees to (True) or refuses (False) when registering.
    consents: dict[ConsentPurpose, bool] = field(default_factory=dict)
    # Assisted registration: how the person consented to being registered (required then).
    consent_recorded: ConsentRecorded | None = None


@dataclass(frozen=True)
class UpdateMember:
    """Command: change some fields of a member's profile (self-service or correction).

    ``changes`` holds only the fields sent, already validated: a field set to None is
    cleared (required fields cannot be). ``expected_version`` comes from If-Match.
    """

    member_id: UUID
    changes: dict[str, Any]
    expected_version: int | None = None


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


def warm_up() -> None:
    """Load the reference data that registrations and imports use (loaded lazily otherwise),
    before :func:`registry.heap.freeze_long_lived` keeps it out of the collector's walks."""
    places.city("FR", "Paris")
    isco.ancestors("2211")
    esco.skill("http://data.europa.eu/esco/skill/none")
    esco.occupation("http://data.europa.eu/esco/occupation/none")
    normalise_phone("+33612345678")
