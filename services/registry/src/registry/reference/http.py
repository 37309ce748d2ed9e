"""The reference data a profile is filled in with, for forms and officers' tools.

Occupations (ISCO-08 groups, ESCO occupations), skills (ESCO) and cities (the
gazetteer) by a few letters, in French or English, so that a client can offer
choices and send the codes and URIs the registry checks. No personal data; any
caller with a token (policy resource ``reference_data``).
ESCO, © European Union; reuse authorised provided the source is acknowledged
(Commission Decision 2011/833/EU). Cities: GeoNames, CC BY 4.0.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_reference import esco, isco, places
from diaspora_service.problems import Problem
from diaspora_service.text import SingleLine
from registry.deps import RegistryDep
from registry.members import domain

router = APIRouter(prefix="/reference", tags=["reference data"])

Lang = Literal["fr", "en"]
Text = Annotated[SingleLine, Query(min_length=2, max_length=100, description="A few letters")]
Limit = Annotated[int, Query(ge=1, le=50)]


class IscoGroupView(BaseModel):
    code: str
    level: int = Field(description="1 major, 2 sub-major, 3 minor, 4 unit group")
    label: str
    parent: str | None


class IscoGroupDetail(IscoGroupView):
    ancestors: list[IscoGroupView]
    children: list[IscoGroupView]


class OccupationChoice(BaseModel):
    uri: str = Field(description="ESCO occupation URI (send as esco_uri)")
    label: str
    isco_code: str = Field(description="Its ISCO-08 unit group")
    isco_label: str


class SkillChoice(BaseModel):
    uri: str = Field(description="ESCO skill URI (send as esco_uri)")
    label: str
    kind: str = Field(description="skill or knowledge")


class CityChoice(BaseModel):
    geonames_id: int
    name: str
    country: str
    latitude: float
    longitude: float


def _allow(registry: Any, principal: Any) -> None:
    registry.identity.policy.decide(principal, "reference_data", "read")


def _group(group: isco.IscoGroup, lang: Lang) -> IscoGroupView:
    return IscoGroupView(
        code=group.code, level=group.level, label=group.label(lang), parent=group.parent
    )


@router.get("/isco/{code}", response_model=IscoGroupDetail, responses=AUTH_RESPONSES)
async def isco_group(
    code: str, registry: RegistryDep, principal: CurrentPrincipal, lang: Lang = "fr"
) -> IscoGroupDetail:
    """An ISCO-08 group with its parents and its sub-groups."""
    _allow(registry, principal)
    group = isco.group(code)
    if group is None:
        raise Problem(404, "No such ISCO-08 group", detail=f"{code!r} is not an ISCO-08 code")
    return IscoGroupDetail(
        **_group(group, lang).model_dump(),
        ancestors=[_group(g, lang) for g in isco.ancestors(code)],
        children=[_group(g, lang) for g in isco.children(code)],
    )


@router.get("/occupations", response_model=list[OccupationChoice], responses=AUTH_RESPONSES)
async def occupations(
    q: Text,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    lang: Lang = "fr",
    limit: Limit = 10,
) -> list[OccupationChoice]:
    """ESCO occupations whose label has words starting with those of `q`."""
    _allow(registry, principal)
    return [
        OccupationChoice(
            uri=o.uri,
            label=o.label(lang),
            isco_code=o.isco_code,
            isco_label=isco.label(o.isco_code, lang) or "",
        )
        for o in esco.find_occupations(q, lang, limit)
    ]


@router.get("/skills", response_model=list[SkillChoice], responses=AUTH_RESPONSES)
async def skills(
    q: Text,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    lang: Lang = "fr",
    limit: Limit = 10,
) -> list[SkillChoice]:
    """ESCO skills whose label has words starting with those of `q` (or write free text)."""
    _allow(registry, principal)
    return [
        SkillChoice(uri=s.uri, label=s.label(lang), kind=s.kind)
        for s in esco.find_skills(q, lang, limit)
    ]


@router.get("/cities", response_model=list[CityChoice], responses=AUTH_RESPONSES)
async def cities(
    country: Annotated[SingleLine, Query(min_length=2, max_length=2)],
    q: Text,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    limit: Limit = 10,
) -> list[CityChoice]:
    """Cities of a country whose name starts with `q` (send the geonames_id, or the name)."""
    _allow(registry, principal)
    try:
        code = domain.normalise_country(country)
    except domain.InvalidRegistration as error:
        raise Problem(422, "Invalid country", detail=str(error)) from None
    return [
        CityChoice(
            geonames_id=c.geonames_id,
            name=c.name,
            country=c.country,
            latitude=c.latitude,
            longitude=c.longitude,
        )
        for c in places.find_cities(code, q, limit)
    ]
