"""The parts of a member's profile, validated against the shipped reference data.

Value objects (frozen pydantic models, so that they parse HTTP input, validate
and serialise to the JSON columns the same way): occupations are ISCO-08 codes
(with an optional ESCO occupation), skills are ESCO skills or free text,
education levels are ISCED 2011, languages ISO 639-1, places ISO 3166-1 with
cities from the packaged gazetteer. A validation error names the field and
says what is wrong; it never echoes more than the value given.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Literal, Self

import pycountry
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from diaspora_events.contracts.registry import ConsentPurpose, MissionType, Sex
from diaspora_reference import esco, isco, places
from diaspora_service.text import SingleLine

__all__ = [
    "CONSENT_PURPOSES",
    "DOCUMENT_KINDS",
    "RESIDENCE_STATUSES",
    "Availability",
    "CityChoice",
    "ConsentMethod",
    "ConsentPurpose",
    "ConsentRecorded",
    "DocumentInput",
    "DocumentKind",
    "Education",
    "Experience",
    "MissionType",
    "Occupation",
    "PlaceOfBirth",
    "PostalAddress",
    "ResidenceStatus",
    "ResolvedCity",
    "Sex",
    "Skill",
    "normalise_country_code",
    "normalise_languages",
    "resolve_city",
]

CONSENT_PURPOSES: tuple[ConsentPurpose, ...] = ("contact_for_missions", "statistics", "newsletters")
# How the citizen's consent was collected when someone else files or changes their record.
ConsentMethod = Literal["signed_form", "in_person", "self_service"]
# Nationality documents whose numbers the registry keeps (encrypted at rest).
DocumentKind = Literal["passport", "national_id_card", "nationality_certificate", "consular_card"]
DOCUMENT_KINDS: tuple[str, ...] = (
    "passport",
    "national_id_card",
    "nationality_certificate",
    "consular_card",
)
# Status in the country of residence. No "undocumented": the registry does not ask.
ResidenceStatus = Literal[
    "national",  # citizen of the country of residence (dual nationality)
    "permanent_resident",
    "temporary_resident",
    "student",
    "refugee",
    "asylum_seeker",
    "other",
]
RESIDENCE_STATUSES: tuple[str, ...] = (
    "national",
    "permanent_resident",
    "temporary_resident",
    "student",
    "refugee",
    "asylum_seeker",
    "other",
)

# Free text refuses control characters (422 naming the field; docs/security.md).
Text100 = Annotated[SingleLine, Field(min_length=1, max_length=100)]
Text200 = Annotated[SingleLine, Field(min_length=1, max_length=200)]


def _this_year() -> int:
    return datetime.now(UTC).year


def normalise_country_code(code: str) -> str:
    """An ISO 3166-1 alpha-2 code, upper case; ValueError for anything else."""
    candidate = code.strip().upper()
    if len(candidate) != 2 or pycountry.countries.get(alpha_2=candidate) is None:
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return candidate


def normalise_languages(codes: list[str]) -> list[str]:
    """ISO 639-1 codes, lower case, each once, in the order given."""
    seen: list[str] = []
    for code in codes:
        candidate = code.strip().lower()
        if len(candidate) != 2 or pycountry.languages.get(alpha_2=candidate) is None:
            raise ValueError(f"{code!r} is not an ISO 639-1 language code (e.g. fr, en, ee)")
        if candidate not in seen:
            seen.append(candidate)
    return seen


def _year(value: int | None, *, earliest: int = 1900, ahead: int = 0) -> int | None:
    if value is None:
        return None
    if not earliest <= value <= _this_year() + ahead:
        raise ValueError(f"{value} is not a year between {earliest} and {_this_year() + ahead}")
    return value


class Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class PlaceOfBirth(Part):
    city: Text100 | None = Field(None, examples=["Kpalimé"])
    country: SingleLine = Field(description="ISO 3166-1 alpha-2", examples=["TG"])

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        return normalise_country_code(value)


class PostalAddress(Part):
    """Kept in the registry only (never in events)."""

    lines: list[Text200] = Field(min_length=1, max_length=4, examples=[["12 rue des Lilas"]])
    postal_code: Annotated[SingleLine, Field(min_length=1, max_length=20)] | None = None
    city: Text100
    region: Text100 | None = None
    country: SingleLine = Field(description="ISO 3166-1 alpha-2")

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        return normalise_country_code(value)


class CityChoice(Part):
    """A city of residence: a GeoNames id (from the gazetteer) or a name.

    A name the gazetteer does not know is kept as written, without coordinates.
    """

    name: Text100 | None = Field(None, examples=["Lyon"])
    geonames_id: int | None = Field(None, ge=1, examples=[2996944])

    @model_validator(mode="after")
    def _one(self) -> Self:
        if self.name is None and self.geonames_id is None:
            raise ValueError("give the city's name or its geonames_id")
        return self


class ResolvedCity(Part):
    name: str
    geonames_id: int | None = None
    latitude: float | None = None
    longitude: float | None = None


def resolve_city(choice: CityChoice | str, country: str) -> ResolvedCity:
    """The city with coordinates when the gazetteer knows it in ``country``."""
    if isinstance(choice, str):
        choice = CityChoice(name=choice)
    if choice.geonames_id is not None:
        found = places.city_by_geonames_id(choice.geonames_id)
        if found is None:
            raise ValueError(f"geonames_id {choice.geonames_id} is not in the gazetteer")
        if found.country != country:
            raise ValueError(
                f"geonames_id {choice.geonames_id} ({found.name}) is in {found.country}, "
                f"not in the country of residence {country}"
            )
    else:
        assert choice.name is not None
        found = places.city(country, choice.name)
        if found is None:
            return ResolvedCity(name=choice.name)
    return ResolvedCity(
        name=found.name,
        geonames_id=found.geonames_id,
        latitude=found.latitude,
        longitude=found.longitude,
    )


class Occupation(Part):
    """An occupation: an ISCO-08 group code and/or an ESCO occupation (its unit group is
    then the code); ``title`` is the person's own wording."""

    isco_code: SingleLine | None = Field(
        None, examples=["2211"], description="ISCO-08, 1 to 4 digits"
    )
    esco_uri: SingleLine | None = Field(None, max_length=200)
    title: Text200 | None = None

    @field_validator("isco_code")
    @classmethod
    def _isco(cls, value: str | None) -> str | None:
        if value is not None and isco.group(value) is None:
            raise ValueError(f"{value!r} is not an ISCO-08 group code")
        return value

    @field_validator("esco_uri")
    @classmethod
    def _esco(cls, value: str | None) -> str | None:
        if value is not None and esco.occupation(value) is None:
            raise ValueError(f"{value!r} is not an ESCO occupation URI")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.esco_uri is not None:
            unit = esco.occupation(self.esco_uri)
            assert unit is not None
            if self.isco_code is None:
                return self.model_copy(update={"isco_code": unit.isco_code})
            if not unit.isco_code.startswith(self.isco_code):
                raise ValueError(
                    f"the ESCO occupation belongs to ISCO-08 group {unit.isco_code}, "
                    f"not to {self.isco_code}"
                )
        elif self.isco_code is None:
            raise ValueError("give isco_code or esco_uri")
        return self


class Skill(Part):
    """A skill from ESCO (``esco_uri``; its French label is filled in when no label is
    given) or in free text (``label`` only)."""

    esco_uri: SingleLine | None = Field(None, max_length=200)
    label: Text200 | None = None

    @field_validator("esco_uri")
    @classmethod
    def _esco(cls, value: str | None) -> str | None:
        if value is not None and esco.skill(value) is None:
            raise ValueError(f"{value!r} is not an ESCO skill URI")
        return value

    @model_validator(mode="after")
    def _labelled(self) -> Self:
        if self.esco_uri is None and self.label is None:
            raise ValueError("give esco_uri or a free-text label")
        if self.label is None and self.esco_uri is not None:
            found = esco.skill(self.esco_uri)
            assert found is not None
            return self.model_copy(update={"label": found.label_fr})
        return self


class Education(Part):
    isced_level: int = Field(ge=0, le=8, description="ISCED 2011 level, 0 to 8")
    field: Text200 | None = Field(None, description="Field of study")
    institution: Text200 | None = None
    country: SingleLine | None = Field(None, description="ISO 3166-1 alpha-2")
    year: int | None = Field(None, description="Year completed (or expected)")

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return None if value is None else normalise_country_code(value)

    @field_validator("year")
    @classmethod
    def _when(cls, value: int | None) -> int | None:
        return _year(value, ahead=10)


class Experience(Part):
    title: Text200
    isco_code: SingleLine | None = None
    employer: Text200 | None = None
    country: SingleLine | None = Field(None, description="ISO 3166-1 alpha-2")
    start_year: int | None = None
    end_year: int | None = Field(None, description="Absent while ongoing")

    @field_validator("isco_code")
    @classmethod
    def _isco(cls, value: str | None) -> str | None:
        if value is not None and isco.group(value) is None:
            raise ValueError(f"{value!r} is not an ISCO-08 group code")
        return value

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return None if value is None else normalise_country_code(value)

    @field_validator("start_year", "end_year")
    @classmethod
    def _when(cls, value: int | None) -> int | None:
        return _year(value)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start_year and self.end_year and self.end_year < self.start_year:
            raise ValueError("end_year is before start_year")
        return self


class Availability(Part):
    """Willingness to take part in missions in Togo."""

    mission_types: list[MissionType] = Field(default_factory=list, max_length=10)
    available_from: date | None = None
    available_until: date | None = None
    remote: bool = Field(False, description="Willing to contribute remotely")

    @field_validator("mission_types")
    @classmethod
    def _unique(cls, value: list[MissionType]) -> list[MissionType]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if (
            self.available_from is not None
            and self.available_until is not None
            and self.available_until < self.available_from
        ):
            raise ValueError("available_until is before available_from")
        return self


_DOCUMENT_NUMBER = re.compile(r"[A-Z0-9][A-Z0-9/-]{2,39}")


class DocumentInput(Part):
    """A nationality document; its number is encrypted at rest and shown only to the person."""

    kind: DocumentKind
    number: SingleLine = Field(min_length=3, max_length=40, examples=["TG1234567"])
    issuing_country: SingleLine = Field("TG", description="ISO 3166-1 alpha-2")
    expires_on: date | None = None

    @field_validator("number")
    @classmethod
    def _number(cls, value: str) -> str:
        compact = re.sub(r"\s+", "", value).upper()
        if not _DOCUMENT_NUMBER.fullmatch(compact):
            raise ValueError("a document number has 3 to 40 letters, digits, '-' or '/'")
        return compact

    @field_validator("issuing_country")
    @classmethod
    def _country(cls, value: str) -> str:
        return normalise_country_code(value)


class ConsentRecorded(Part):
    """The attestation an officer gives when filing for someone: how the person consented
    to being registered."""

    method: Literal["signed_form", "in_person"]
    reference: Annotated[SingleLine, Field(min_length=1, max_length=100)] | None = Field(
        None, description="E.g. the number of the signed form kept at the embassy"
    )
