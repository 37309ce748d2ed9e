"""What the statistics count of one member, derived from a profile snapshot.

Only facts, never names or contacts: country, embassy, city, primary occupation
group, highest education level, sex, birth year, skills and languages. Each
member has exactly one key in every single-valued dimension ("none", "unknown"
when the profile says nothing), so totals add up: the members of a slice equal
the sum over countries, over sexes, over education levels, over age bands...
Skills and languages are multi-valued (a member counts once per skill).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from diaspora_events.contracts.registry import MemberProfile
from diaspora_reference import places

ALL = "*"
NONE = "none"
UNKNOWN = "unknown"
# Single-valued dimensions, in the order they are listed.
SINGLE = (
    "total",
    "embassy",
    "country",
    "city",
    "occupation",
    "occupation_submajor",
    "education",
    "sex",
    "birth_year",
)
MULTI = ("skill", "language")
DIMENSIONS = SINGLE + MULTI


@dataclass(frozen=True)
class City:
    key: str
    name: str
    latitude: float | None
    longitude: float | None


@dataclass(frozen=True)
class Facts:
    member_id: UUID
    counted: bool
    embassy_id: str
    country: str
    city_key: str
    isco_major: str
    isco_submajor: str
    isced: str
    sex: str
    birth_year: int
    skills: tuple[str, ...]
    languages: tuple[str, ...]
    as_of: datetime

    def keys(self) -> list[tuple[str, str]]:
        """(dimension, key) pairs this member adds 1 to."""
        single = {
            "total": "all",
            "embassy": self.embassy_id,
            "country": self.country,
            "city": self.city_key,
            "occupation": self.isco_major,
            "occupation_submajor": self.isco_submajor,
            "education": self.isced,
            "sex": self.sex,
            "birth_year": str(self.birth_year),
        }
        pairs = [(d, single[d]) for d in SINGLE]
        pairs += [("skill", s) for s in self.skills]
        pairs += [("language", lang) for lang in self.languages]
        return pairs

    def slices(self) -> list[tuple[str, str, str]]:
        """(embassy, country, isco major) slices the member's keys are counted in."""
        return [
            (self.embassy_id, country, major)
            for country in (self.country, ALL)
            for major in (self.isco_major, ALL)
        ]

    def cells(self) -> set[tuple[str, str, str, str, str]]:
        """Every (dimension, embassy, country, isco major, key) counter the member adds 1 to."""
        if not self.counted:
            return set()
        return {(d, e, c, m, k) for (e, c, m) in self.slices() for (d, k) in self.keys()}

    def row(self) -> dict[str, object]:
        return {
            "member_id": self.member_id,
            "counted": self.counted,
            "embassy_id": self.embassy_id,
            "country": self.country,
            "city_key": self.city_key,
            "isco_major": self.isco_major,
            "isco_submajor": self.isco_submajor,
            "isced": self.isced,
            "sex": self.sex,
            "birth_year": self.birth_year,
            "skills": list(self.skills),
            "languages": list(self.languages),
            "as_of": self.as_of,
        }

    @classmethod
    def of_row(cls, row: object) -> Facts:
        return cls(
            member_id=row.member_id,  # type: ignore[attr-defined]
            counted=row.counted,  # type: ignore[attr-defined]
            embassy_id=row.embassy_id,  # type: ignore[attr-defined]
            country=row.country,  # type: ignore[attr-defined]
            city_key=row.city_key,  # type: ignore[attr-defined]
            isco_major=row.isco_major,  # type: ignore[attr-defined]
            isco_submajor=row.isco_submajor,  # type: ignore[attr-defined]
            isced=row.isced,  # type: ignore[attr-defined]
            sex=row.sex,  # type: ignore[attr-defined]
            birth_year=row.birth_year,  # type: ignore[attr-defined]
            skills=tuple(row.skills),  # type: ignore[attr-defined]
            languages=tuple(row.languages),  # type: ignore[attr-defined]
            as_of=row.as_of,  # type: ignore[attr-defined]
        )


def city_of(profile: MemberProfile) -> City | None:
    """The member's city: its GeoNames id as key when known, coordinates from the event or
    the gazetteer; a place the gazetteer does not know is keyed by country and folded name."""
    given = profile.city
    if given is None or not given.name.strip():
        return None
    country = profile.country_of_residence.upper()
    found = None
    if given.geonames_id is not None:
        found = places.city_by_geonames_id(given.geonames_id)
    if found is None:
        found = places.city(country, given.name)
    if found is not None and found.country == country:
        return City(
            key=str(found.geonames_id),
            name=found.name,
            latitude=given.latitude if given.latitude is not None else found.latitude,
            longitude=given.longitude if given.longitude is not None else found.longitude,
        )
    folded = places.fold(given.name)
    if not folded:
        return None
    return City(
        key=f"{country}:{folded}",
        name=given.name.strip(),
        latitude=given.latitude,
        longitude=given.longitude,
    )


def skill_key(uri: str | None, label: str) -> str:
    """ESCO skills by URI; free-text skills by their folded text."""
    if uri:
        return uri
    return "text:" + " ".join(label.casefold().split())[:200]


def facts_of(
    member_id: UUID,
    profile: MemberProfile,
    *,
    as_of: datetime,
    require_consent: bool = False,
) -> tuple[Facts, City | None, dict[str, str]]:
    """The member's facts, their city and the labels of their free-text keys."""
    refused = any(c.purpose == "statistics" and not c.granted for c in profile.consents)
    counted = profile.consents_to("statistics") if require_consent else not refused
    city = city_of(profile)
    occupation = next((o.isco_code.strip() for o in profile.occupations if o.isco_code), "")
    levels = [e.isced_level for e in profile.education]
    skills: dict[str, str] = {}
    for skill in profile.skills:
        if skill.label.strip() or skill.esco_uri:
            skills.setdefault(skill_key(skill.esco_uri, skill.label), skill.label.strip())
    languages = sorted({lang.strip().lower() for lang in profile.languages if lang.strip()})
    facts = Facts(
        member_id=member_id,
        counted=counted,
        embassy_id=profile.embassy_id,
        country=profile.country_of_residence.upper(),
        city_key=city.key if city else UNKNOWN,
        isco_major=occupation[:1] or NONE,
        isco_submajor=occupation[:2] if len(occupation) >= 2 else NONE,
        isced=str(max(levels)) if levels else UNKNOWN,
        sex=profile.sex,
        birth_year=profile.date_of_birth.year,
        skills=tuple(sorted(skills)),
        languages=tuple(languages),
        as_of=as_of,
    )
    return facts, city, skills


AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("0-17", 0, 17),
    ("18-24", 18, 24),
    ("25-34", 25, 34),
    ("35-44", 35, 44),
    ("45-54", 45, 54),
    ("55-64", 55, 64),
    ("65+", 65, None),
)


def age_band(birth_year: int, today: date) -> str:
    """The band of the age reached in the current calendar year (birth years are what the
    read model keeps, so that the bands move with time without rewriting counts)."""
    age = today.year - birth_year
    for name, low, high in AGE_BANDS:
        if age >= low and (high is None or age <= high):
            return name
    return AGE_BANDS[0][0]
