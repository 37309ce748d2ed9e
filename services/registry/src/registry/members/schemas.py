"""Request and response models of the members' HTTP interface (also used by the
import, which validates each row as a registration)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from diaspora_events.contracts import registry as snapshot
from diaspora_service.text import SingleLine
from registry.members import domain, profile


class ProfileFields(BaseModel):
    """The optional parts of a profile, shared by registration and updates."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    sex: profile.Sex | None = None
    place_of_birth: profile.PlaceOfBirth | None = None
    documents: list[profile.DocumentInput] | None = Field(
        None,
        max_length=4,
        description="Nationality documents. Numbers are encrypted at rest and shown only to "
        "the person; a list replaces the previous one.",
    )
    postal_address: profile.PostalAddress | None = Field(
        None, description="Kept in the registry only, never sent to other services."
    )
    city: SingleLine | profile.CityChoice | None = Field(
        None,
        description="City of residence: a name (looked up in the gazetteer of the country of "
        "residence; kept without coordinates when unknown) or {geonames_id}.",
        examples=["Lyon"],
    )
    arrival_year: int | None = Field(None, description="Year of arrival in the country")
    residence_status: profile.ResidenceStatus | None = None
    languages: list[SingleLine] | None = Field(
        None, max_length=20, description="ISO 639-1 codes", examples=[["fr", "ee", "en"]]
    )
    occupations: list[profile.Occupation] | None = Field(None, max_length=10)
    skills: list[profile.Skill] | None = Field(None, max_length=50)
    education: list[profile.Education] | None = Field(None, max_length=20)
    experience: list[profile.Experience] | None = Field(None, max_length=30)
    availability: profile.Availability | None = None

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else profile.normalise_languages(value)

    @field_validator("arrival_year")
    @classmethod
    def _arrival(cls, value: int | None) -> int | None:
        return domain.check_arrival_year(value)

    @field_validator("documents")
    @classmethod
    def _one_per_kind(
        cls, value: list[profile.DocumentInput] | None
    ) -> list[profile.DocumentInput] | None:
        if value is not None and len({d.kind for d in value}) != len(value):
            raise ValueError("one document of each kind")
        return value


class RegistrationRequest(ProfileFields):
    """What a person gives to register (only the first block is required)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    given_name: SingleLine = Field(min_length=1, max_length=100, examples=["Akossiwa"])
    family_name: SingleLine = Field(min_length=1, max_length=100, examples=["Mensah"])
    date_of_birth: date = Field(examples=["1990-04-27"])
    country_of_residence: SingleLine = Field(
        min_length=2, max_length=2, description="ISO 3166-1 alpha-2 code", examples=["FR"]
    )
    email: EmailStr = Field(examples=["akossiwa.mensah@example.org"])
    phone: SingleLine = Field(
        min_length=4,
        max_length=32,
        description="International form, +...",
        examples=["+33612345678"],
    )
    preferred_language: domain.Language = "fr"
    consents: dict[profile.ConsentPurpose, bool] = Field(
        default_factory=dict,
        description="Purposes agreed to (true) or refused (false); absent: not asked.",
        examples=[{"contact_for_missions": True, "statistics": True, "newsletters": False}],
    )
    consent_recorded: profile.ConsentRecorded | None = Field(
        None,
        description="Assisted registration (required then): how the person consented to "
        "being registered.",
    )

    @field_validator("country_of_residence")
    @classmethod
    def _country(cls, value: str) -> str:
        return domain.normalise_country(value)

    @model_validator(mode="after")
    def _arrived_after_birth(self) -> RegistrationRequest:
        if self.arrival_year is not None and self.arrival_year < self.date_of_birth.year:
            raise ValueError("arrival_year is before the year of birth")
        return self

    def command(self, idempotency_key: str | None) -> domain.RegisterMember:
        data = self.model_dump(exclude_unset=False)
        optional = {
            name: getattr(self, name)
            for name in ProfileFields.model_fields
            if getattr(self, name) is not None
        }
        for name in ("documents", "languages", "occupations", "skills", "education", "experience"):
            if name in optional:
                optional[name] = tuple(optional[name])
        return domain.RegisterMember(
            given_name=self.given_name,
            family_name=self.family_name,
            date_of_birth=self.date_of_birth,
            country_of_residence=self.country_of_residence,
            email=data["email"],
            phone=self.phone,
            preferred_language=self.preferred_language,
            idempotency_key=idempotency_key,
            consents=dict(self.consents),
            consent_recorded=self.consent_recorded,
            **optional,
        )

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        return domain.normalise_phone(value)

    @field_validator("date_of_birth")
    @classmethod
    def _birth(cls, value: date) -> date:
        return domain.check_birth_date(value)


class DocumentView(BaseModel):
    kind: str
    issuing_country: str
    expires_on: date | None = None
    number: str | None = Field(
        None, description="Only for the person (encrypted at rest; never shown to staff)."
    )


class RegistrationConsentView(BaseModel):
    method: str = Field(description="self_service, signed_form or in_person")
    reference: str | None = None


class MemberView(BaseModel):
    """A member record as the caller may see it: fields the policy withholds are absent."""

    id: UUID | None = None
    given_name: str | None = None
    family_name: str | None = None
    date_of_birth: date | None = None
    sex: str | None = None
    place_of_birth: profile.PlaceOfBirth | None = None
    country_of_residence: str | None = None
    city: snapshot.City | None = None
    embassy_id: str | None = Field(None, description="The post whose jurisdiction covers them.")
    postal_address: profile.PostalAddress | None = None
    email: str | None = None
    phone: str | None = None
    preferred_language: domain.Language | None = None
    arrival_year: int | None = None
    residence_status: str | None = None
    languages: list[str] | None = None
    occupations: list[snapshot.Occupation] | None = None
    skills: list[snapshot.Skill] | None = None
    education: list[snapshot.Education] | None = None
    experience: list[snapshot.Experience] | None = None
    availability: snapshot.Availability | None = None
    documents: list[DocumentView] | None = None
    identity: snapshot.IdentityVerification | None = Field(
        None,
        description=(
            "Identity verification level: the strongest check an officer recorded whose "
            "document has not expired (in_person over document_checked); null: not verified."
        ),
    )
    consents: list[snapshot.Consent] | None = Field(
        None, description="The latest decision per purpose (absent purpose: never asked)."
    )
    registered_at: datetime | None = None
    registered_by: str | None = Field(None, description="Who filed it, if not the person.")
    registration_consent: RegistrationConsentView | None = None
    last_confirmed_at: datetime | None = None
    updated_at: datetime | None = None
    version: int | None = Field(None, description="Also the ETag; send it as If-Match to change.")


class MemberPage(BaseModel):
    items: list[MemberView]
    next_offset: int | None = Field(None, description="Offset of the next page, if any.")


def views(items: list[dict[str, Any]]) -> list[MemberView]:
    return [MemberView.model_validate(item) for item in items]
