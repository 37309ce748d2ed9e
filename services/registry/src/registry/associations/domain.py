"""What an association of Togolese abroad is, independent of HTTP and SQL.

An association has a name, a country and city of seat abroad (its embassy is
derived from the country, like a member's), domains of activity from a controlled
list, officers (role and name, optionally linked to a registered member), links to
its members, and partnerships with localities in Togo (an ISO 3166-2:TG region,
optionally one of its prefectures). Everything a change touches is compared field
by field so that the history says what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, get_args
from uuid import UUID

from diaspora_reference import places, togo
from registry.members.domain import InvalidRegistration, normalise_country

# Domains of activity (docs/registry.md, "Associations").
Domain = Literal[
    "education",
    "health",
    "culture",
    "co_development",
    "entrepreneurship",
    "solidarity",
    "sport",
    "religion",
    "youth",
    "women",
    "other",
]
DOMAINS: tuple[str, ...] = get_args(Domain)

# An officer's role in the association's board; "contact" is the person who manages
# the record with the registry (the citizen who registered it, when one did).
OfficerRole = Literal[
    "president",
    "vice_president",
    "secretary",
    "treasurer",
    "contact",
    "board_member",
]
OFFICER_ROLES: tuple[str, ...] = get_args(OfficerRole)

Status = Literal["active", "dissolved"]


class InvalidAssociation(ValueError):
    """Input that cannot describe an association (a 422 for the caller)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class City:
    name: str
    geonames_id: int | None = None
    latitude: float | None = None
    longitude: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "geonames_id": self.geonames_id,
            "name": self.name,
            "latitude": self.latitude,
            "longitude": self.longitude,
        }


@dataclass(frozen=True)
class Officer:
    role: str
    name: str
    member_id: UUID | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "name": self.name,
            "member_id": str(self.member_id) if self.member_id else None,
        }

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Officer:
        member = raw.get("member_id")
        return cls(role=raw["role"], name=raw["name"], member_id=UUID(member) if member else None)


@dataclass(frozen=True)
class Partnership:
    region: str  # ISO 3166-2:TG code
    prefecture: str | None = None  # official name (diaspora_reference.togo)
    description: str | None = None

    @property
    def prefecture_slug(self) -> str | None:
        return togo.prefecture(self.prefecture).slug if self.prefecture else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "prefecture": self.prefecture,
            "prefecture_slug": self.prefecture_slug,
            "description": self.description,
        }

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Partnership:
        return cls(
            region=raw["region"],
            prefecture=raw.get("prefecture"),
            description=raw.get("description"),
        )


def country(code: str) -> str:
    try:
        return normalise_country(code)
    except InvalidRegistration as error:
        raise InvalidAssociation(str(error), field="country") from None


def locality(region: str, prefecture: str | None) -> tuple[str, str | None]:
    """The region's ISO code and the prefecture's official name, checked against the
    reference data: the prefecture must lie in the region."""
    try:
        code = togo.region(region).code
    except togo.UnknownRegion as error:
        raise InvalidAssociation(str(error), field="region") from None
    if prefecture is None or not prefecture.strip():
        return code, None
    try:
        return code, togo.prefecture(prefecture, code).name
    except togo.UnknownPrefecture as error:
        raise InvalidAssociation(str(error), field="prefecture") from None


def partnership(region: str, prefecture: str | None, description: str | None) -> Partnership:
    code, name = locality(region, prefecture)
    return Partnership(region=code, prefecture=name, description=description or None)


def resolve_city(country_code: str, name: str | None) -> City | None:
    """The city from the packaged gazetteer (GeoNames id and coordinates), or the name
    as given when the gazetteer does not know it."""
    if name is None or not name.strip():
        return None
    found = places.city(country_code, name)
    if found is None:
        return City(name=name.strip())
    return City(
        name=found.name,
        geonames_id=found.geonames_id,
        latitude=found.latitude,
        longitude=found.longitude,
    )


def domains(values: list[str]) -> list[str]:
    """Known domains, each once, in the controlled list's order."""
    unknown = sorted(set(values) - set(DOMAINS))
    if unknown:
        raise InvalidAssociation(f"unknown domains {unknown}; use {list(DOMAINS)}", field="domains")
    return [d for d in DOMAINS if d in values]


@dataclass(frozen=True)
class Association:
    """The record (as the registry keeps it)."""

    id: UUID
    name: str
    country: str
    city: City | None
    embassy_id: str
    domains: list[str]
    officers: list[Officer]
    partnerships: list[Partnership]
    email: str | None
    website: str | None
    status: Status
    registered_at: datetime
    updated_at: datetime
    version: int
    registered_by: str
    dissolved_at: datetime | None = None
    member_ids: list[UUID] = field(default_factory=list)

    def comparable(self) -> dict[str, Any]:
        """The fields a change may touch, as JSON-ready values (for the history)."""
        return {
            "name": self.name,
            "country": self.country,
            "city": self.city.as_dict() if self.city else None,
            "embassy_id": self.embassy_id,
            "domains": list(self.domains),
            "officers": [o.as_dict() for o in self.officers],
            "partnerships": [p.as_dict() for p in self.partnerships],
            "email": self.email,
            "website": self.website,
            "status": self.status,
            "member_ids": sorted(str(m) for m in self.member_ids),
        }

    def with_changes(self, **changes: Any) -> Association:
        return replace(self, **changes)


def changes(before: Association | None, after: Association) -> dict[str, dict[str, Any]]:
    """Per changed field, its value before and after (before is null for a new record)."""
    old = before.comparable() if before else {}
    new = after.comparable()
    return {
        name: {"before": old.get(name), "after": value}
        for name, value in new.items()
        if old.get(name) != value
    }
