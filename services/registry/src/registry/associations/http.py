"""The registry's HTTP interface for associations of Togolese abroad.

Every endpoint authenticates the caller and asks the policy table (resources
``association`` and ``association_member``, docs/security.md): the public directory
(name, country, city, domains, partnerships in Togo) is open to every role that may
list; officers, member links and the contact email only to the association's
contact and to staff in scope, whose reads are audited. An association outside the
caller's scope is "not found".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Header, Query, Request, Response
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    field_validator,
    model_validator,
)

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
from diaspora_service.problems import Problem
from diaspora_service.text import MultiLine, SingleLine
from registry.associations import domain
from registry.associations.service import (
    Access,
    AssociationNotFound,
    AssociationQuery,
    Dissolved,
    IdempotencyConflict,
    MemberNotFound,
    NotRegistered,
    OfficerInput,
    OutsideJurisdiction,
    RegisterAssociation,
    Services,
    UnknownMembers,
    VersionMismatch,
    association_history_of,
    associations_of_member,
    find_associations,
    link_member,
    register_association,
    unlink_member,
    update_association,
)
from registry.deps import RegistryDep
from registry.resources import Registry

router = APIRouter(tags=["associations"])
_PREFIX = re.compile(r"(/[A-Za-z0-9._-]+){0,4}")

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such association within your scope"}
}


# -- input -------------------------------------------------------------------------------


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OfficerIn(_Input):
    role: domain.OfficerRole = Field(description="Role on the association's board.")
    name: SingleLine = Field(min_length=1, max_length=200, examples=["Kodjo Amegavi"])
    member_id: UUID | None = Field(
        None,
        description="The officer's member record, when registered: yours (a contact), "
        "a member who joined the association, or one within your scope (staff).",
    )


class PartnershipIn(_Input):
    region: SingleLine = Field(
        min_length=1, max_length=40, description="ISO 3166-2:TG code (TG-M) or region name."
    )
    prefecture: SingleLine | None = Field(
        None, max_length=80, description="A prefecture of that region (accents optional)."
    )
    description: MultiLine | None = Field(None, max_length=1000)

    @model_validator(mode="after")
    def _locality(self) -> PartnershipIn:
        code, prefecture = domain.locality(self.region, self.prefecture)
        self.region, self.prefecture = code, prefecture
        return self

    def value(self) -> domain.Partnership:
        return domain.Partnership(self.region, self.prefecture, self.description or None)


def _country(value: str) -> str:
    return domain.country(value)


class AssociationIn(_Input):
    """What registering an association takes."""

    name: SingleLine = Field(min_length=2, max_length=200, examples=["Togolais de Lyon"])
    country: SingleLine = Field(
        min_length=2, max_length=2, description="ISO 3166-1 alpha-2 of its seat"
    )
    city: SingleLine | None = Field(
        None, max_length=100, description="City of its seat (gazetteer name when known)."
    )
    domains: list[domain.Domain] = Field(default_factory=list, max_length=11)
    officers: list[OfficerIn] = Field(default_factory=list, max_length=50)
    partnerships: list[PartnershipIn] = Field(default_factory=list, max_length=100)
    email: EmailStr | None = None
    website: AnyHttpUrl | None = None

    @field_validator("country")
    @classmethod
    def _valid_country(cls, value: str) -> str:
        return _country(value)


class AssociationPatch(_Input):
    """The fields to change; absent fields stay as they are, null clears an optional one.
    Lists (domains, officers, partnerships) are replaced as a whole."""

    name: SingleLine | None = Field(None, min_length=2, max_length=200)
    country: SingleLine | None = Field(None, min_length=2, max_length=2)
    city: SingleLine | None = Field(None, max_length=100)
    domains: list[domain.Domain] | None = Field(None, max_length=11)
    officers: list[OfficerIn] | None = Field(None, max_length=50)
    partnerships: list[PartnershipIn] | None = Field(None, max_length=100)
    email: EmailStr | None = None
    website: AnyHttpUrl | None = None

    @field_validator("country")
    @classmethod
    def _valid_country(cls, value: str | None) -> str | None:
        return None if value is None else _country(value)

    @model_validator(mode="after")
    def _required_stay(self) -> AssociationPatch:
        for name in ("name", "country", "domains", "officers", "partnerships"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if name == "officers":
                value = [OfficerInput(o.role, o.name, o.member_id) for o in value]
            elif name == "partnerships":
                value = [p.value() for p in value]
            elif name == "website" and value is not None:
                value = str(value)
            found[name] = value
        return found


class DissolutionIn(_Input):
    reason: MultiLine | None = Field(None, max_length=1000, description="Why, if known.")


# -- output ------------------------------------------------------------------------------


class CityView(BaseModel):
    geonames_id: int | None = Field(None, description="GeoNames id, when the gazetteer knows it.")
    name: str
    latitude: float | None = None
    longitude: float | None = None


class OfficerView(BaseModel):
    role: str
    name: str
    member_id: UUID | None = None


class PartnershipView(BaseModel):
    region: str = Field(description="ISO 3166-2:TG code.")
    prefecture: str | None = None
    prefecture_slug: str | None = None
    description: str | None = None


class AssociationView(BaseModel):
    """An association as the caller may see it: fields the policy withholds are absent."""

    id: UUID | None = None
    name: str | None = None
    country: str | None = None
    city: CityView | None = None
    embassy_id: str | None = Field(None, description="The post whose jurisdiction covers it.")
    domains: list[str] | None = None
    partnerships: list[PartnershipView] | None = None
    website: str | None = None
    status: Literal["active", "dissolved"] | None = None
    registered_at: datetime | None = None
    updated_at: datetime | None = None
    dissolved_at: datetime | None = None
    version: int | None = Field(None, description="Incremented by each change (the ETag).")
    email: str | None = None
    officers: list[OfficerView] | None = None
    member_ids: list[UUID] | None = None
    registered_by: str | None = Field(None, description="Who registered it (token subject).")


class AssociationPage(BaseModel):
    items: list[AssociationView]
    next_offset: int | None = Field(None, description="Offset of the next page, if any.")


class HistoryEntry(BaseModel):
    version: int
    at: datetime
    action: str = Field(
        description="registered, updated, dissolved, member_linked, member_unlinked, "
        "member_erased or member_merged"
    )
    actor_subject: str
    actor_roles: list[str]
    changed_fields: list[str]
    changes: dict[str, Any] = Field(
        description="Per field, {before, after} (empty for erasures: erased values are gone)."
    )


class HistoryPage(BaseModel):
    items: list[HistoryEntry]
    next_offset: int | None = None


class MembershipView(BaseModel):
    association_id: UUID
    name: str
    country: str
    city: str | None = None
    embassy_id: str
    status: str
    linked_at: datetime
    basis: Literal["self", "staff"] = Field(
        description="self: the person joined; staff: an officer linked them."
    )


class MembershipList(BaseModel):
    items: list[MembershipView]


# -- plumbing ----------------------------------------------------------------------------


Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


def _services(registry: Registry) -> Services:
    return Services(
        sessions=registry.sessions,
        outbox=registry.outbox,
        audit=registry.audit,
        policy=registry.identity.policy,
        jurisdictions=registry.identity.jurisdictions,
    )


@contextmanager
def _problems() -> Iterator[None]:
    """The use cases' refusals as problem details."""
    try:
        yield
    except AssociationNotFound:
        raise Problem(404, "Association not found") from None
    except MemberNotFound:
        raise Problem(404, "Member not found") from None
    except UnknownMembers as error:
        raise Problem(
            422,
            "Unknown member",
            detail="An officer names a member id that does not exist or that you may not link.",
            errors=[
                {"field": f, "message": "unknown member", "code": "unknown_member"}
                for f in error.fields
            ],
        ) from None
    except domain.InvalidAssociation as error:
        raise Problem(
            422,
            "The request is not valid",
            detail=str(error),
            errors=[{"field": error.field, "message": str(error), "code": "invalid"}],
        ) from None
    except OutsideJurisdiction:
        raise Problem(
            403,
            "Outside your jurisdiction",
            detail="The association's country is not covered by your embassies.",
        ) from None
    except NotRegistered:
        raise Problem(
            422,
            "Register yourself first",
            detail="An association is registered by one of its members: register yourself "
            "(POST /members), then register the association; you become its contact.",
        ) from None
    except Dissolved:
        raise Problem(
            409,
            "Association dissolved",
            detail="A dissolved association's record no longer changes.",
        ) from None
    except VersionMismatch as error:
        raise version_conflict(error.current) from None
    except IdempotencyConflict:
        raise Problem(
            422,
            "Idempotency-Key already used",
            detail="This Idempotency-Key was used for a different request; use a new key.",
        ) from None


def _filter_country(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return domain.country(value)
    except domain.InvalidAssociation as error:
        raise Problem(422, "Invalid country filter", detail=str(error)) from None


def _filter_locality(region: str | None, prefecture: str | None) -> tuple[str | None, str | None]:
    try:
        code = togo.region(region).code if region else None
        slug = togo.prefecture(prefecture, code).slug if prefecture else None
    except togo.UnknownLocality as error:
        raise Problem(422, "Unknown locality in Togo", detail=str(error)) from None
    return code, slug


# -- routes ------------------------------------------------------------------------------


@router.post(
    "/associations",
    status_code=201,
    response_model=AssociationView,
    response_model_exclude_unset=True,
    responses={**AUTH_RESPONSES, 422: {"description": "Invalid, or unknown member id"}},
)
async def register(
    body: AssociationIn,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    """Register an association: a citizen (a registered member, who becomes its contact),
    an officer for one seated in their jurisdiction, or a coordinator."""
    decision = registry.identity.policy.decide(principal, "association", "create")
    command = RegisterAssociation(
        name=body.name,
        country=body.country,
        city=body.city,
        domains=list(body.domains),
        officers=[OfficerInput(o.role, o.name, o.member_id) for o in body.officers],
        partnerships=[p.value() for p in body.partnerships],
        email=body.email,
        website=str(body.website) if body.website else None,
        idempotency_key=idempotency_key,
    )
    with _problems():
        view, created = await register_association(
            services=_services(registry),
            decision=decision,
            context=AccessContext.of(request),
            command=command,
        )
    if not created:
        response.status_code = 200
    prefix = request.headers.get("x-forwarded-prefix", "")
    if not _PREFIX.fullmatch(prefix):
        prefix = ""
    response.headers["Location"] = f"{prefix}/associations/{view['id']}"
    set_etag(response, view.get("version"))
    return view


@router.get(
    "/associations",
    response_model=AssociationPage,
    response_model_exclude_unset=True,
    responses=AUTH_RESPONSES,
)
async def list_associations(
    registry: RegistryDep,
    principal: CurrentPrincipal,
    request: Request,
    q: Annotated[
        SingleLine | None, Query(min_length=2, max_length=100, description="Words of the name")
    ] = None,
    country: Annotated[SingleLine | None, Query(min_length=2, max_length=2)] = None,
    city: Annotated[SingleLine | None, Query(min_length=1, max_length=100)] = None,
    domain_: Annotated[domain.Domain | None, Query(alias="domain")] = None,
    region: Annotated[
        SingleLine | None, Query(max_length=40, description="Partnership region in Togo (TG-M)")
    ] = None,
    prefecture: Annotated[
        SingleLine | None, Query(max_length=80, description="Partnership prefecture in Togo")
    ] = None,
    embassy: Annotated[SingleLine | None, Query(max_length=64)] = None,
    status: Literal["active", "dissolved", "all"] = "active",
    offset: Offset = 0,
    limit: Limit = 50,
) -> AssociationPage:
    """Associations within the caller's scope, by name; filters: name words (accents and
    case ignored), country, city, domain, partnership region or prefecture, embassy."""
    if embassy is not None and embassy not in registry.identity.jurisdictions.embassies:
        raise Problem(422, "Unknown embassy", detail=f"{embassy!r} is not an embassy id")
    region_code, prefecture_slug = _filter_locality(region, prefecture)
    access = Access.of(registry.identity.policy, principal, "list")
    items = await find_associations(
        services=_services(registry),
        access=access,
        context=AccessContext.of(request),
        query=AssociationQuery(
            country=_filter_country(country),
            embassy=embassy,
            city=city,
            domain=domain_,
            region=region_code,
            prefecture_slug=prefecture_slug,
            text=q,
            status=None if status == "all" else status,
            offset=offset,
            limit=limit + 1,
        ),
    )
    more = len(items) > limit
    return AssociationPage(
        items=[AssociationView(**item) for item in items[:limit]],
        next_offset=offset + limit if more else None,
    )


@router.get(
    "/associations/{association_id}",
    response_model=AssociationView,
    response_model_exclude_unset=True,
    responses={**AUTH_RESPONSES, **NOT_FOUND},
)
async def read_association(
    association_id: UUID,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """Read one association (dissolved ones too)."""
    access = Access.of(registry.identity.policy, principal, "read")
    found = await find_associations(
        services=_services(registry),
        access=access,
        context=AccessContext.of(request),
        query=AssociationQuery(association_id=association_id, status=None, limit=1),
    )
    if not found:
        raise Problem(404, "Association not found")
    set_etag(response, found[0].get("version"))
    return found[0]


@router.patch(
    "/associations/{association_id}",
    response_model=AssociationView,
    response_model_exclude_unset=True,
    responses={
        **AUTH_RESPONSES,
        **NOT_FOUND,
        409: {"description": "The association is dissolved"},
        **PRECONDITION_RESPONSES,
    },
)
async def update(
    association_id: UUID,
    body: AssociationPatch,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Change an association (its contact, or staff in scope); the change is kept in its
    history and published."""
    decision = registry.identity.policy.decide(principal, "association", "update")
    with _problems():
        view = await update_association(
            services=_services(registry),
            decision=decision,
            context=AccessContext.of(request),
            association_id=association_id,
            changes=body.changes(),
            if_match=expected_version(if_match),
        )
    set_etag(response, view.get("version"))
    return view


@router.post(
    "/associations/{association_id}/dissolution",
    response_model=AssociationView,
    response_model_exclude_unset=True,
    responses={
        **AUTH_RESPONSES,
        **NOT_FOUND,
        409: {"description": "Already dissolved"},
        **PRECONDITION_RESPONSES,
    },
)
async def dissolve(
    association_id: UUID,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
    body: Annotated[DissolutionIn | None, Body()] = None,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Record that an association was dissolved; its record stays, read-only."""
    decision = registry.identity.policy.decide(principal, "association", "update")
    with _problems():
        view = await update_association(
            services=_services(registry),
            decision=decision,
            context=AccessContext.of(request),
            association_id=association_id,
            changes={},
            if_match=expected_version(if_match),
            dissolve=True,
            reason=body.reason if body else None,
        )
    set_etag(response, view.get("version"))
    return view


@router.get(
    "/associations/{association_id}/history",
    response_model=HistoryPage,
    responses={**AUTH_RESPONSES, **NOT_FOUND},
)
async def history(
    association_id: UUID,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    request: Request,
    offset: Offset = 0,
    limit: Limit = 50,
) -> HistoryPage:
    """Who changed what and when, oldest first (its contact and staff in scope)."""
    decision = registry.identity.policy.decide(principal, "association", "history")
    with _problems():
        rows = await association_history_of(
            services=_services(registry),
            decision=decision,
            context=AccessContext.of(request),
            association_id=association_id,
            offset=offset,
            limit=limit + 1,
        )
    return HistoryPage(
        items=[HistoryEntry(**r) for r in rows[:limit]],
        next_offset=offset + limit if len(rows) > limit else None,
    )


@router.put(
    "/associations/{association_id}/members/{member_id}",
    status_code=204,
    responses={
        **AUTH_RESPONSES,
        404: {"description": "No such association or member within your scope"},
        409: {"description": "The association is dissolved"},
    },
)
async def link(
    association_id: UUID,
    member_id: UUID,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    request: Request,
) -> Response:
    """Link a member to an association: the person themselves (joining), or staff for a
    member and an association within their scope. Linking twice changes nothing."""
    with _problems():
        await link_member(
            services=_services(registry),
            principal=principal,
            context=AccessContext.of(request),
            association_id=association_id,
            member_id=member_id,
        )
    return Response(status_code=204)


@router.delete(
    "/associations/{association_id}/members/{member_id}",
    status_code=204,
    responses={
        **AUTH_RESPONSES,
        404: {"description": "No such association within your scope"},
    },
)
async def unlink(
    association_id: UUID,
    member_id: UUID,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    request: Request,
) -> Response:
    """Remove a member from an association (and from its officers): the person
    themselves (leaving), its contact, or staff in scope."""
    with _problems():
        await unlink_member(
            services=_services(registry),
            principal=principal,
            context=AccessContext.of(request),
            association_id=association_id,
            member_id=member_id,
        )
    return Response(status_code=204)


@router.get(
    "/members/{member_id}/associations",
    response_model=MembershipList,
    responses={**AUTH_RESPONSES, 404: {"description": "No such member within your scope"}},
)
async def member_associations(
    member_id: UUID,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    request: Request,
) -> MembershipList:
    """The associations a member belongs to (the person, or staff in scope: audited)."""
    decision = registry.identity.policy.decide(principal, "association_member", "list")
    with _problems():
        rows = await associations_of_member(
            services=_services(registry),
            decision=decision,
            context=AccessContext.of(request),
            member_id=member_id,
        )
    return MembershipList(items=[MembershipView(**r) for r in rows])
