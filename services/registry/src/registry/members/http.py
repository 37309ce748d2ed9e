"""The members' HTTP interface: registration, lists, CSV export and reading a record.

Every endpoint authenticates the caller (bearer token) and asks the policy
table what they may do (diaspora_identity.policy): the same decision restricts
rows in SQL, cuts fields per row and feeds the audit trail, on get, list,
search and export alike. A record outside the caller's scope is "not found".
"""

from __future__ import annotations

import csv
import io
import re
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response

from diaspora_identity.audit import AccessContext
from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_identity.principal import Principal
from diaspora_service.conditional import set_etag
from diaspora_service.problems import Problem
from diaspora_service.text import SingleLine
from registry.deps import (
    Limit,
    Offset,
    RegistryDep,
    decision_if_allowed,
    embassy_filter,
    invalid_field,
)
from registry.members import domain
from registry.members.errors import (
    AlreadyRegistered,
    ConsentNotRecorded,
    IdempotencyConflict,
    InvalidChange,
    OutsideJurisdiction,
)
from registry.members.reads import MemberQuery, find_members
from registry.members.records import MEMBER_FIELDS
from registry.members.registration import register_member
from registry.members.schemas import MemberPage, MemberView, RegistrationRequest, views
from registry.resources import Registry

router = APIRouter(prefix="/members", tags=["members"])
_PREFIX = re.compile(r"(/[A-Za-z0-9._-]+){0,4}")


def _country(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return domain.normalise_country(value)
    except domain.InvalidRegistration as error:
        raise Problem(422, "Invalid country filter", detail=str(error)) from None


async def _page(
    registry: Registry,
    request: Request,
    principal: Principal,
    action: str,
    query: MemberQuery,
    offset: int,
) -> MemberPage:
    decision = registry.identity.policy.decide(principal, "member", action)
    limit = query.limit or 50
    items = await find_members(
        sessions=registry.sessions,
        audit=registry.audit,
        decision=decision,
        context=AccessContext.of(request),
        query=MemberQuery(
            country=query.country,
            embassy=query.embassy,
            text=query.text,
            offset=offset,
            limit=limit + 1,
        ),
    )
    more = len(items) > limit
    return MemberPage(items=views(items[:limit]), next_offset=offset + limit if more else None)


@router.post(
    "",
    status_code=201,
    response_model=MemberView,
    response_model_exclude_unset=True,
    responses={**AUTH_RESPONSES, 409: {"description": "This identity is already registered"}},
)
async def register(
    body: RegistrationRequest,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> MemberView:
    """Register a person of the diaspora: themselves (citizen), or someone living in the
    jurisdiction of the caller's embassy (assisted registration by an officer)."""
    decision = registry.identity.policy.decide(principal, "member", "create")
    try:
        member, created = await register_member(
            sessions=registry.sessions,
            outbox=registry.outbox,
            audit=registry.audit,
            jurisdictions=registry.identity.jurisdictions,
            decision=decision,
            context=AccessContext.of(request),
            command=body.command(idempotency_key),
            duplicate_threshold=registry.settings.duplicate_threshold,
            cipher=registry.cipher,
        )
    except ConsentNotRecorded:
        raise invalid_field(
            "consent_recorded",
            "an assisted registration records how the person consented "
            "(method: signed_form or in_person)",
        ) from None
    except InvalidChange as error:
        raise invalid_field(error.field, str(error)) from None
    except IdempotencyConflict:
        raise Problem(
            422,
            "Idempotency-Key already used",
            detail="This Idempotency-Key was used for a different request; use a new key.",
        ) from None
    except AlreadyRegistered as error:
        raise Problem(
            409,
            "Already registered",
            detail="Your identity is already linked to a member record.",
            member_id=str(error.member_id),
        ) from None
    except OutsideJurisdiction:
        raise Problem(
            403,
            "Outside your jurisdiction",
            detail="Your staff roles do not allow registering someone living in this "
            "country (not covered by your embassies); a staff token never registers itself.",
        ) from None
    if not created:
        response.status_code = 200
    # Behind the gateway, where this service lives under /api/registry.
    prefix = request.headers.get("x-forwarded-prefix", "")
    if not _PREFIX.fullmatch(prefix):
        prefix = ""
    response.headers["Location"] = f"{prefix}/members/{member['id']}"
    set_etag(response, member["version"])
    # The record carries owner_subject: the field rules reaching it depend on it.
    return MemberView.model_validate(decision.project(member, MEMBER_FIELDS))


@router.get(
    "", response_model=MemberPage, response_model_exclude_unset=True, responses=AUTH_RESPONSES
)
async def list_members(
    registry: RegistryDep,
    principal: CurrentPrincipal,
    request: Request,
    country: Annotated[SingleLine | None, Query(min_length=2, max_length=2)] = None,
    embassy: Annotated[SingleLine | None, Query(max_length=64)] = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> MemberPage:
    """Members within the caller's scope, oldest registration first."""
    query = MemberQuery(
        country=_country(country), embassy=embassy_filter(registry, embassy), limit=limit
    )
    return await _page(registry, request, principal, "list", query, offset)


_FORMULA = re.compile(r"^[=@\t\r]|^[+-](?![0-9 ]*$)")


# The CSV export's columns: one value per cell (lists joined with "; ").
CSV_FIELDS: tuple[str, ...] = (
    "id",
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "country_of_residence",
    "city",
    "embassy_id",
    "email",
    "phone",
    "preferred_language",
    "arrival_year",
    "residence_status",
    "languages",
    "occupations",
    "skills",
    "registered_at",
    "registered_by",
    "last_confirmed_at",
)


def _flat(field: str, value: Any) -> Any:
    if field == "city":
        return value["name"] if value else None
    if field == "occupations":
        return "; ".join(o["isco_code"] for o in value or [])
    if field == "skills":
        return "; ".join(s["label"] for s in value or [])
    if field == "languages":
        return "; ".join(value or [])
    return value


def _cell(value: Any) -> str:
    text = "" if value is None else str(value.isoformat() if hasattr(value, "isoformat") else value)
    # No spreadsheet formulas from data (CSV injection); +33... phone numbers stay as they are.
    return "'" + text if _FORMULA.match(text) else text


@router.get(
    "/export",
    responses={
        **AUTH_RESPONSES,
        200: {"content": {"text/csv": {}}, "description": "CSV, one member per line"},
    },
    response_class=Response,
)
async def export_members(
    registry: RegistryDep,
    principal: CurrentPrincipal,
    request: Request,
    country: Annotated[SingleLine | None, Query(min_length=2, max_length=2)] = None,
    embassy: Annotated[SingleLine | None, Query(max_length=64)] = None,
) -> Response:
    """The members within the caller's scope as CSV (the fields the caller may see)."""
    decision = registry.identity.policy.decide(principal, "member", "export")
    items = await find_members(
        sessions=registry.sessions,
        audit=registry.audit,
        decision=decision,
        context=AccessContext.of(request),
        query=MemberQuery(
            country=_country(country),
            embassy=embassy_filter(registry, embassy),
            limit=registry.settings.export_max_rows,
        ),
    )
    columns = decision.output_fields(CSV_FIELDS)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for item in items:
        writer.writerow([_cell(_flat(c, item.get(c))) for c in columns])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="members.csv"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/{member_id}",
    response_model=MemberView,
    response_model_exclude_unset=True,
    responses={**AUTH_RESPONSES, 404: {"description": "No such member within your scope"}},
)
async def read_member(
    member_id: UUID,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
) -> MemberView:
    """Read one member's record (its ETag is the version to send as If-Match)."""
    policy = registry.identity.policy
    decision = policy.decide(principal, "member", "read")
    found = await find_members(
        sessions=registry.sessions,
        audit=registry.audit,
        decision=decision,
        context=AccessContext.of(request),
        query=MemberQuery(member_id=member_id, limit=1),
        documents_decision=decision_if_allowed(policy, principal, "member_document", "read"),
        cipher=registry.cipher,
    )
    if not found:
        raise Problem(404, "Member not found")
    set_etag(response, found[0].get("version"))
    return MemberView.model_validate(found[0])
