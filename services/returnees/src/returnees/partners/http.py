"""HTTP interface of partner organisations (`/partners`).

The ministry's coordinators (and admins) record the organisations the return cell
refers returnees to: the need categories they take, the regions and prefectures of Togo
they cover, their contact, and the `partner_org` their case workers' tokens carry. Each
save is a new version (kept) and an audited change. The cell's case workers look up who
offers a service in a prefecture; a partner's case workers see their own organisation.
Togo's regions and prefectures (the reference list) go to any signed-in caller.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from diaspora_identity.audit import AccessContext
from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_reference import togo
from diaspora_service.conditional import (
    PRECONDITION_RESPONSES,
    IfMatch,
    expected_version,
    set_etag,
    version_conflict,
)
from diaspora_service.problems import TYPE_BASE, Problem
from diaspora_service.text import SingleLine
from returnees.deps import IdentityDep, ServiceDep
from returnees.partners import domain, service
from returnees.partners.schemas import (
    Areas,
    Contact,
    NewPartner,
    PartnerEdit,
    PartnerList,
    PartnerView,
    PrefectureView,
    RegionView,
)
from returnees.problems import invalid, not_found

router = APIRouter(prefix="/partners", tags=["partners"])

RESOURCE = "returnee_partner"
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such partner"}}
EDIT_FIELDS = sorted(PartnerEdit.model_fields)


def now() -> datetime:
    return datetime.now(UTC)


def view(row: dict[str, Any]) -> PartnerView:
    return PartnerView(
        id=row["id"],
        partner_org=row["partner_org"],
        name=row["name"],
        contact=Contact(
            name=row["contact_name"], email=row["contact_email"], phone=row["contact_phone"]
        ),
        services=list(row["services"]),
        regions=list(row["regions"]),
        prefectures=list(row["prefectures"]),
        active=row["active"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _fields(body: PartnerEdit) -> service.PartnerFields:
    errors: list[dict[str, str]] = []
    regions: list[str] = []
    prefectures: list[str] = []
    try:
        regions = domain.region_codes(body.regions)
    except domain.UnknownPlace as error:
        errors.append({"field": "regions", "message": str(error), "code": "unknown"})
    try:
        prefectures = domain.prefecture_slugs(body.prefectures)
    except domain.UnknownPlace as error:
        errors.append({"field": "prefectures", "message": str(error), "code": "unknown"})
    if not errors and not regions and not prefectures:
        errors.append(
            {
                "field": "regions",
                "message": "a partner covers at least one region or prefecture",
                "code": "missing",
            }
        )
    if errors:
        raise invalid("Invalid partner", errors)
    return service.PartnerFields(
        name=body.name,
        contact_name=body.contact.name,
        contact_email=str(body.contact.email) if body.contact.email else None,
        contact_phone=body.contact.phone,
        services=list(body.services),
        regions=regions,
        prefectures=prefectures,
        active=body.active,
    )


@router.get("/areas", response_model=Areas, responses=AUTH_RESPONSES)
async def areas(principal: CurrentPrincipal) -> Areas:
    """Togo's five regions (ISO 3166-2:TG) and their prefectures: what a partner's
    coverage and a referral's prefecture name (any signed-in caller)."""
    return Areas(
        regions=[
            RegionView(
                code=r.code,
                name=r.name,
                name_fr=r.name_fr,
                seat=r.seat,
                prefectures=[
                    PrefectureView(slug=p.slug, name=p.name, seat=p.seat)
                    for p in togo.prefectures(r.code)
                ],
            )
            for r in togo.regions()
        ]
    )


@router.post(
    "",
    status_code=201,
    response_model=PartnerView,
    responses={
        **AUTH_RESPONSES,
        409: {"description": "Another partner has this partner_org"},
        422: {"description": "Invalid body (problem details naming the fields)"},
    },
)
async def create_partner(
    body: NewPartner,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
) -> PartnerView:
    """Record a partner organisation (audited)."""
    decision = identity.policy.decide(principal, RESOURCE, "create")
    fields = _fields(body)
    async with svc.sessions() as session, session.begin():
        try:
            row, version_id = await service.create(
                session, body.partner_org, fields, actor=principal.subject, now=now()
            )
        except service.DuplicatePartnerOrg:
            raise Problem(
                409,
                "Duplicate partner",
                detail=f"A partner with partner_org {body.partner_org} exists already.",
                type_=TYPE_BASE + "duplicate-partner",
            ) from None
        await svc.audit.record(
            session, decision, AccessContext.of(request), [(version_id, EDIT_FIELDS)]
        )
    set_etag(response, row["version"])
    return view(row)


@router.get("", response_model=PartnerList, responses=AUTH_RESPONSES)
async def list_partners(
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    offers: Annotated[domain.Need | None, Query(description="A need category")] = None,
    prefecture: Annotated[
        SingleLine | None, Query(min_length=2, max_length=60, description="Slug or name")
    ] = None,
    active: bool | None = None,
) -> PartnerList:
    """Partners, by name; `offers` and `prefecture`: those that take that need there
    (whole region or the prefecture covered). A partner's case worker: their own."""
    decision = identity.policy.decide(principal, RESOURCE, "list")
    if prefecture is not None:
        try:
            domain.prefecture_slug(prefecture)
        except domain.UnknownPlace as error:
            raise invalid(
                "Invalid query",
                [{"field": "prefecture", "message": str(error), "code": "unknown"}],
            ) from None
    async with svc.sessions() as session:
        rows = await service.search(
            session,
            decision.where(service.SCOPE_COLUMNS),
            service=offers,
            prefecture=prefecture,
            active=active,
        )
    return PartnerList(items=[view(r) for r in rows])


@router.get("/{partner_id}", response_model=PartnerView, responses={**AUTH_RESPONSES, **NOT_FOUND})
async def get_partner(
    partner_id: UUID,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    response: Response,
) -> PartnerView:
    decision = identity.policy.decide(principal, RESOURCE, "read")
    async with svc.sessions() as session:
        row = await service.load(session, partner_id, decision.where(service.SCOPE_COLUMNS))
    if row is None:
        raise not_found("partner")
    set_etag(response, row["version"])
    return view(row)


@router.put(
    "/{partner_id}",
    response_model=PartnerView,
    responses={**AUTH_RESPONSES, **NOT_FOUND, **PRECONDITION_RESPONSES},
)
async def put_partner(
    partner_id: UUID,
    body: PartnerEdit,
    svc: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> PartnerView:
    """A new version of a partner (name, contact, services, coverage, active). Referrals
    already made keep their partner. Audited."""
    decision = identity.policy.decide(principal, RESOURCE, "update")
    expected = expected_version(if_match)
    fields = _fields(body)
    async with svc.sessions() as session, session.begin():
        try:
            saved = await service.save(
                session, partner_id, fields, expected=expected, actor=principal.subject, now=now()
            )
        except service.VersionConflict as error:
            raise version_conflict(error.current) from None
        if saved is None:
            raise not_found("partner")
        row, version_id = saved
        await svc.audit.record(
            session, decision, AccessContext.of(request), [(version_id, EDIT_FIELDS)]
        )
    set_etag(response, row["version"])
    return view(row)
