"""Statistics and cartography of the diaspora: counts, a GeoJSON map, a CSV export.

Read from the statistics read model (registry.statistics), never from the members
table. Small cells are suppressed for everyone; callers whose roles the policy
grants ``statistics_exact`` on ``member`` (ministry coordinators, admins) may ask
for exact counts with ``exact=true``. Without a token the caller is the ``public``
role of the policy, which sees the suppressed figures of every embassy.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from diaspora_identity.http import authenticate
from diaspora_identity.policy import Decision
from diaspora_identity.principal import Principal, Role
from diaspora_service.problems import Problem
from diaspora_service.text import SingleLine
from registry.deps import RegistryDep
from registry.members import domain
from registry.resources import Registry
from registry.statistics.labels import Lang
from registry.statistics.queries import (
    Dimension,
    Filters,
    count_table,
    csv_export,
    geojson,
)

router = APIRouter(prefix="/statistics", tags=["statistics"])

# Who calls without a token: the policy's `public` role, nothing else.
ANONYMOUS = Principal(subject="anonymous", roles=frozenset({Role.PUBLIC}))

RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Invalid bearer token (problem details); no token is allowed"},
    403: {"description": "Your roles do not allow this (e.g. exact counts) (problem details)"},
    422: {"description": "Invalid filter (problem details)"},
}


async def caller(request: Request) -> Principal:
    """The verified caller, or the anonymous public when the request carries no token."""
    if not request.headers.get("authorization"):
        return ANONYMOUS
    return await authenticate(request)


Caller = Annotated[Principal, Depends(caller)]


Country = Annotated[
    SingleLine | None, Query(min_length=2, max_length=2, description="ISO 3166-1 alpha-2 code")
]
# Its own pattern admits no control character (and SingleLine's would hide it in the docs).
Occupation = Annotated[
    str | None,
    Query(
        pattern=r"^([0-9]|none)$",
        description="ISCO-08 major group (one digit) of the primary occupation, or `none`",
    ),
]
Exact = Annotated[
    bool,
    Query(description="Exact counts, no suppression (roles granted `statistics_exact` only)"),
]


def _decide(registry: Registry, principal: Principal, exact: bool) -> Decision:
    action = "statistics_exact" if exact else "statistics"
    return registry.identity.policy.decide(principal, "member", action)


def _filters(country: str | None, occupation: str | None) -> Filters:
    if country is not None:
        try:
            country = domain.normalise_country(country)
        except domain.InvalidRegistration as error:
            raise Problem(422, "Invalid country", detail=str(error)) from None
    return Filters(country=country, occupation=occupation)


def _cache(response: Response, exact: bool, principal: Principal) -> None:
    # Suppressed figures for everyone may be cached by the gateway and browsers for a minute;
    # exact or scoped figures never.
    public = not exact and principal is ANONYMOUS
    response.headers["Cache-Control"] = "public, max-age=60" if public else "private, no-store"
    # The answer depends on the token: a cache must not hand the public one to staff.
    response.headers["Vary"] = "Authorization"


class CountItem(BaseModel):
    key: str = Field(description="Code: ISO country, GeoNames id, ISCO group, ISCED level...")
    label: str
    members: int | None = Field(description="null when suppressed (small cell)")
    suppressed: bool


class CountTableView(BaseModel):
    dimension: str
    filters: dict[str, str]
    exact: bool
    threshold: int = Field(description="Cells under this count are suppressed unless exact")
    total: int | None = Field(description="Members in the filters and scope (null if small)")
    items: list[CountItem]
    omitted_cells: int = Field(
        description="Suppressed cells of free-text keys, left out altogether"
    )


@router.get("/members", response_model=CountTableView, responses=RESPONSES)
async def member_counts(
    registry: RegistryDep,
    principal: Caller,
    response: Response,
    by: Dimension = "country",
    country: Country = None,
    occupation: Occupation = None,
    exact: Exact = False,
    lang: Lang = "fr",
) -> dict[str, Any]:
    """How many members per country, city, occupation group, skill, education level, sex,
    age band, language or embassy, within the caller's scope; small cells suppressed."""
    decision = _decide(registry, principal, exact)
    async with registry.sessions() as session:
        table = await count_table(
            session,
            decision=decision,
            dimension=by,
            filters=_filters(country, occupation),
            exact=exact,
            threshold=registry.settings.statistics_min_cell,
            lang=lang,
            embassy_names=_embassy_names(registry),
        )
    _cache(response, exact, principal)
    return table.as_dict()


def _embassy_names(registry: Registry) -> dict[str, str]:
    return {e.id: e.name for e in registry.identity.jurisdictions.embassies.values()}


@router.get(
    "/map",
    responses={
        **RESPONSES,
        200: {
            "content": {"application/geo+json": {}},
            "description": "GeoJSON FeatureCollection (RFC 7946): points per country and city",
        },
    },
    response_class=Response,
)
async def member_map(
    registry: RegistryDep,
    principal: Caller,
    country: Country = None,
    occupation: Occupation = None,
    exact: Exact = False,
    lang: Lang = "fr",
) -> Response:
    """Where the members live: a point per country (at its capital) and per city, with counts;
    suppressed cells are left off the map."""
    decision = _decide(registry, principal, exact)
    async with registry.sessions() as session:
        collection = await geojson(
            session,
            decision=decision,
            filters=_filters(country, occupation),
            exact=exact,
            threshold=registry.settings.statistics_min_cell,
            lang=lang,
        )
    response = Response(_json(collection), media_type="application/geo+json")
    _cache(response, exact, principal)
    return response


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@router.get(
    "/export",
    responses={
        **RESPONSES,
        200: {"content": {"text/csv": {}}, "description": "CSV: dimension,key,label,members"},
    },
    response_class=Response,
)
async def member_counts_csv(
    registry: RegistryDep,
    principal: Caller,
    country: Country = None,
    occupation: Occupation = None,
    exact: Exact = False,
    lang: Lang = "fr",
) -> Response:
    """Every count table as CSV (one row per cell; empty members when suppressed)."""
    decision = _decide(registry, principal, exact)
    async with registry.sessions() as session:
        body = await csv_export(
            session,
            decision=decision,
            filters=_filters(country, occupation),
            exact=exact,
            threshold=registry.settings.statistics_min_cell,
            lang=lang,
            embassy_names=_embassy_names(registry),
        )
    response = Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="diaspora-statistics.csv"'},
    )
    _cache(response, exact, principal)
    return response
