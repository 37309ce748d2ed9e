"""Search of members for officers and coordinators (policy action `search` on `member`).

Name words (accents and case ignored, typos tolerated) and filters; every given
criterion must hold. The results come through the same read path as get and list
(registry.members.reads.find_members): scope, fields per row and audit are the same.
Imported by registry.entrypoints.http when it builds the app (it reuses its views).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request

from diaspora_identity.audit import AccessContext
from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_service.problems import Problem
from diaspora_service.text import SingleLine
from registry.deps import RegistryDep, embassy_filter
from registry.duplicates.normalise import name_words
from registry.members import domain
from registry.members.schemas import MemberPage, MemberView
from registry.search.service import MAX_LIMIT, MAX_OFFSET, SearchQuery, search_members

router = APIRouter(prefix="/members", tags=["members"])

# A pattern of its own (here and below) admits no control character: plain str, so that
# the documents show that pattern (SingleLine's would replace it in an optional parameter).
MissionFilter = Annotated[
    str | None,
    Query(
        pattern=r"^(teaching|medical|volunteering|co_development|investment|"
        r"technical_assistance|any|remote)$",
        description="Willing for this mission type (`any`: for some mission; `remote`)",
    ),
]


@router.get(
    "/search",
    response_model=MemberPage,
    response_model_exclude_unset=True,
    responses={**AUTH_RESPONSES, 422: {"description": "No criterion, or an invalid one"}},
)
async def search(
    registry: RegistryDep,
    principal: CurrentPrincipal,
    request: Request,
    q: Annotated[
        SingleLine | None,
        Query(min_length=2, max_length=100, description="Words of the name (typos tolerated)"),
    ] = None,
    occupation: Annotated[
        str | None,
        Query(pattern=r"^[0-9]{1,4}$", description="ISCO-08 code or group (1 to 4 digits)"),
    ] = None,
    skill: Annotated[
        SingleLine | None, Query(min_length=2, max_length=200, description="ESCO URI or words")
    ] = None,
    education_min: Annotated[
        int | None, Query(ge=0, le=8, description="Highest ISCED level at least this")
    ] = None,
    country: Annotated[SingleLine | None, Query(min_length=2, max_length=2)] = None,
    embassy: Annotated[SingleLine | None, Query(max_length=64, description="Embassy id")] = None,
    city: Annotated[
        SingleLine | None, Query(min_length=1, max_length=100, description="GeoNames id or name")
    ] = None,
    language: Annotated[
        str | None, Query(pattern=r"^[A-Za-z]{2}$", description="ISO 639-1 code")
    ] = None,
    mission: MissionFilter = None,
    available_on: Annotated[
        date | None, Query(description="Available for missions on this date")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
) -> MemberPage:
    """Members matching every criterion given, best name match first, within the caller's
    scope (at most 1,000 results deep: refine the criteria rather than page further)."""
    decision = registry.identity.policy.decide(principal, "member", "search")
    if country is not None:
        try:
            country = domain.normalise_country(country)
        except domain.InvalidRegistration as error:
            raise Problem(422, "Invalid country", detail=str(error)) from None
    if q is not None and not name_words(q):
        raise Problem(422, "Invalid name", detail="q must contain letters or digits.")
    query = SearchQuery(
        text=q,
        occupation=occupation,
        skill=skill,
        education_min=education_min,
        country=country,
        embassy=embassy_filter(registry, embassy),
        city=city,
        language=language,
        mission=mission,
        available_on=available_on,
        offset=offset,
        limit=limit,
    )
    if not any(
        v is not None
        for v in (
            q,
            occupation,
            skill,
            education_min,
            country,
            city,
            language,
            mission,
            available_on,
        )
    ):
        raise Problem(422, "No search criterion", detail="Give a name (q) or a filter.")
    items, more = await search_members(
        sessions=registry.sessions,
        audit=registry.audit,
        decision=decision,
        context=AccessContext.of(request),
        query=query,
    )
    return MemberPage(
        items=[MemberView(**item) for item in items],
        next_offset=offset + limit if more and offset + limit <= MAX_OFFSET else None,
    )
