"""Events published by the registry service."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from diaspora_events.contracts.audit import AuditRecorded
from diaspora_events.contracts.base import Event, contract, personal
from diaspora_events.topics import (
    REGISTRY_ASSOCIATIONS,
    REGISTRY_AUDIT,
    REGISTRY_DUPLICATES,
    REGISTRY_MEMBERS,
)

Language = Literal["fr", "en"]
Sex = Literal["female", "male", "other", "unspecified"]
# What a member may be willing to do in Togo (the ministry's programmes).
MissionType = Literal[
    "teaching", "medical", "volunteering", "co_development", "investment", "technical_assistance"
]
ConsentPurpose = Literal["contact_for_missions", "statistics", "newsletters"]
# How far an officer checked who the person is: a copy of an identity document checked
# remotely (uploaded), or the document seen in person at the embassy (the stronger).
IdentityLevel = Literal["document_checked", "in_person"]
IdentityMethod = Literal["document_in_person", "document_upload"]


class _Part(BaseModel):
    """A part of a snapshot: frozen, tolerant of fields added later."""

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)


class City(_Part):
    """A place of residence from the packaged gazetteer (GeoNames ids), no network call."""

    geonames_id: int | None = Field(default=None, description="GeoNames id, when known.")
    name: str
    latitude: float | None = None
    longitude: float | None = None


class Occupation(_Part):
    isco_code: str = Field(description="ISCO-08 unit group (4 digits) or coarser group code.")
    esco_uri: str | None = Field(default=None, description="ESCO occupation URI, when chosen.")
    title: str | None = Field(default=None, description="The person's own title for it.")


class Skill(_Part):
    esco_uri: str | None = Field(
        default=None, description="ESCO skill URI; absent for a free-text skill."
    )
    label: str = Field(description="Preferred label, or the person's free text.")


class Education(_Part):
    isced_level: int = Field(ge=0, le=8, description="ISCED 2011 level, 0 to 8.")
    field: str | None = Field(default=None, description="Field of study (free text or ISCED-F).")
    institution: str | None = None
    country: str | None = Field(default=None, description="ISO 3166-1 alpha-2.")
    year: int | None = Field(default=None, description="Year completed (or expected).")


class Experience(_Part):
    title: str
    isco_code: str | None = None
    employer: str | None = None
    country: str | None = None
    start_year: int | None = None
    end_year: int | None = Field(default=None, description="Absent while ongoing.")


class Availability(_Part):
    mission_types: list[MissionType] = Field(default_factory=list)
    available_from: date | None = None
    available_until: date | None = None
    remote: bool = Field(default=False, description="Willing to contribute remotely.")


class Consent(_Part):
    purpose: ConsentPurpose
    granted: bool
    at: datetime = Field(description="When the consent was given or withdrawn.")


class IdentityVerification(_Part):
    """The strongest unexpired identity check an officer recorded for the member (as it
    stood when the event was written)."""

    level: IdentityLevel
    method: IdentityMethod
    document_type: str = Field(description="passport, national_id_card, consular_card...")
    verified_at: datetime
    embassy_id: str = Field(description="The embassy whose officer verified it.")
    # The snapshot is rewritten only when the record changes: a reader needs the date after
    # which this check no longer counts (optional, so that the field stays compatible).
    expires_on: date | None = Field(
        default=None,
        description=(
            "Expiry of the document seen: after this date the check no longer counts "
            "(a reader of an older snapshot must treat the member as not verified)."
        ),
    )


class MemberProfile(_Part):
    """Everything consumers may need of a member, as it stands after the event.

    Every member event except erasure and merge carries the whole snapshot, so the
    latest event of a member (the topic is compacted by member id) is enough to
    rebuild a read model, and after erasure nothing personal remains on the topic.
    """

    given_name: str
    family_name: str
    date_of_birth: date
    sex: Sex = "unspecified"
    email: str
    phone: str
    preferred_language: Language = "fr"
    country_of_residence: str = Field(description="ISO 3166-1 alpha-2.")
    city: City | None = None
    embassy_id: str
    arrival_year: int | None = None
    residence_status: str | None = None
    languages: list[str] = Field(default_factory=list, description="ISO 639-1 codes.")
    occupations: list[Occupation] = Field(default_factory=list)
    skills: list[Skill] = Field(default_factory=list)
    education: list[Education] = Field(default_factory=list)
    experience: list[Experience] = Field(default_factory=list)
    availability: Availability = Field(default_factory=Availability)
    consents: list[Consent] = Field(
        default_factory=list, description="Latest decision per purpose; absent means not given."
    )
    last_confirmed_at: datetime | None = None
    # Added after the first release: absent means nobody verified the person's identity.
    identity: IdentityVerification | None = None

    def consents_to(self, purpose: ConsentPurpose) -> bool:
        return any(c.granted for c in self.consents if c.purpose == purpose)


@contract(
    event_type="registry.member.registered",
    version=1,
    topic=REGISTRY_MEMBERS,
    key="member_id",
    description="A person was registered in the diaspora registry.",
    subject="member_id",
)
class MemberRegisteredV1(Event):
    member_id: UUID
    given_name: str = personal(description="Given name(s), as the person wrote them.")
    family_name: str = personal(description="Family name.")
    date_of_birth: date = personal()
    email: str = personal(description="Contact email address.")
    phone: str = personal(description="Phone number in E.164 form.")
    country_of_residence: str = personal(
        description="ISO 3166-1 alpha-2 code of the country of residence."
    )
    preferred_language: Language = "fr"
    registered_at: datetime
    # Added after the first release: readers of the flat fields above are unaffected.
    profile: MemberProfile | None = personal(
        default=None, description="The whole profile as registered (absent from early events)."
    )


@contract(
    event_type="registry.member.updated",
    version=1,
    topic=REGISTRY_MEMBERS,
    key="member_id",
    description="A member's profile changed (by the person, an officer or a merge).",
    subject="member_id",
)
class MemberUpdatedV1(Event):
    member_id: UUID
    updated_at: datetime
    changed_fields: list[str] = Field(description="Top-level profile fields that changed.")
    profile: MemberProfile = personal(description="The whole profile after the change.")


@contract(
    event_type="registry.member.confirmed",
    version=1,
    topic=REGISTRY_MEMBERS,
    key="member_id",
    description="A member confirmed their profile is still true (update campaign).",
    subject="member_id",
)
class MemberConfirmedV1(Event):
    member_id: UUID
    confirmed_at: datetime
    profile: MemberProfile = personal()


@contract(
    event_type="registry.member.identity-verified",
    version=1,
    topic=REGISTRY_MEMBERS,
    key="member_id",
    description=(
        "An officer verified the member's identity against evidence. `level` is the "
        "record's verification level after it (profile.identity: the strongest unexpired "
        "check, which a weaker later check never lowers). Consular services that need a "
        "verified applicant read it."
    ),
    subject="member_id",
)
class MemberIdentityVerifiedV1(Event):
    member_id: UUID
    verified_at: datetime
    level: IdentityLevel
    profile: MemberProfile = personal()


@contract(
    event_type="registry.member.marked-stale",
    version=1,
    topic=REGISTRY_MEMBERS,
    key="member_id",
    description=(
        "A member's profile was not confirmed for the configured number of months; "
        "notifications reminds the person to update it."
    ),
    subject="member_id",
)
class MemberMarkedStaleV1(Event):
    member_id: UUID
    marked_at: datetime
    last_confirmed_at: datetime
    profile: MemberProfile = personal()


@contract(
    event_type="registry.member.merged",
    version=1,
    topic=REGISTRY_MEMBERS,
    key="member_id",
    description=(
        "A duplicate member record was merged into another; consumers drop member_id "
        "and keep survivor_id (whose merged profile follows as registry.member.updated)."
    ),
)
class MemberMergedV1(Event):
    member_id: UUID = Field(description="The record that no longer exists.")
    survivor_id: UUID
    merged_at: datetime
    case_id: UUID


@contract(
    event_type="registry.duplicates.flagged",
    version=1,
    topic=REGISTRY_DUPLICATES,
    key="case_id",
    description="Registration or import found likely duplicates; officers review the case.",
)
class DuplicatesFlaggedV1(Event):
    case_id: UUID
    member_ids: list[UUID]
    embassy_id: str
    score: float = Field(ge=0, le=1)
    reasons: list[str] = Field(description="Which attributes matched, e.g. 'phone', 'name~0.92'.")
    flagged_at: datetime


@contract(
    event_type="registry.duplicates.resolved",
    version=1,
    topic=REGISTRY_DUPLICATES,
    key="case_id",
    description="An officer merged or dismissed a duplicates case.",
)
class DuplicatesResolvedV1(Event):
    case_id: UUID
    outcome: Literal["merged", "dismissed"]
    survivor_id: UUID | None = None
    resolved_at: datetime
    resolved_by: str


class AssociationOfficer(_Part):
    role: str = Field(description="president, secretary, treasurer...")
    name: str
    member_id: UUID | None = None


class Partnership(_Part):
    """A partnership with a locality in Togo."""

    region: str = Field(description="ISO 3166-2:TG region code, e.g. TG-M.")
    prefecture: str | None = None
    description: str | None = None


class AssociationProfile(_Part):
    """An association as it stands after the event (the topic is compacted by its id)."""

    name: str
    country: str = Field(description="ISO 3166-1 alpha-2.")
    city: City | None = None
    embassy_id: str
    domains: list[str] = Field(default_factory=list, description="Domains of activity.")
    officers: list[AssociationOfficer] = Field(default_factory=list)
    member_ids: list[UUID] = Field(default_factory=list)
    partnerships: list[Partnership] = Field(default_factory=list)
    email: str | None = None
    website: str | None = None
    # Added after the first release (absent from early events: "active").
    status: Literal["active", "dissolved"] = Field(
        default="active", description="A dissolved association keeps its record."
    )
    dissolved_at: datetime | None = None


@contract(
    event_type="registry.association.registered",
    version=1,
    topic=REGISTRY_ASSOCIATIONS,
    key="association_id",
    description="An association of Togolese abroad was registered.",
    subject="association_id",
)
class AssociationRegisteredV1(Event):
    association_id: UUID
    registered_at: datetime
    # Officers' names are personal data.
    association: AssociationProfile = personal()


@contract(
    event_type="registry.association.updated",
    version=1,
    topic=REGISTRY_ASSOCIATIONS,
    key="association_id",
    description="An association's record changed.",
    subject="association_id",
)
class AssociationUpdatedV1(Event):
    association_id: UUID
    updated_at: datetime
    changed_fields: list[str]
    association: AssociationProfile = personal()


@contract(
    event_type="registry.audit.recorded",
    version=1,
    topic=REGISTRY_AUDIT,
    key="record_id",
    description="Someone other than the person read or changed a member's record.",
    subject="record_id",
)
class RegistryAuditRecordedV1(AuditRecorded):
    pass


@contract(
    event_type="registry.member.erased",
    version=1,
    topic=REGISTRY_MEMBERS,
    key="member_id",
    description=(
        "A person's data was erased from the registry at their request; every service "
        "deletes or anonymises what it holds on them."
    ),
)
class MemberErasedV1(Event):
    member_id: UUID
    erased_at: datetime
