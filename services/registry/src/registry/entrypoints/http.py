"""The registry's HTTP interface.

Every endpoint authenticates the caller (bearer token) and asks the policy
table what they may do (diaspora_identity.policy): the same decision restricts
rows in SQL, cuts fields per row and feeds the audit trail, on get, list,
search and export alike. A record outside the caller's scope is "not found".
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, FastAPI, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from diaspora_events.contracts import registry as snapshot
from diaspora_events.observability import setup_observability
from diaspora_identity.audit import AccessContext
from diaspora_identity.http import CurrentPrincipal, install_identity, upload_authorizer
from diaspora_identity.policy import Decision, Forbidden, Policy
from diaspora_identity.principal import Principal
from diaspora_service.app import create_app
from diaspora_service.db import retry_until_reachable
from diaspora_service.problems import Problem
from diaspora_service.request_id import RequestIdMiddleware
from diaspora_service.text import SingleLine
from diaspora_service.uploads import UploadRoute
from registry import SERVICE_NAME, domain, email_syntax, heap, profile
from registry.access_log import access_log
from registry.associations.service import reconcile_association_embassies
from registry.bootstrap import bootstrap
from registry.deps import Limit, Offset, RegistryDep
from registry.entrypoints.associations_api import router as associations_router
from registry.imports.settings import ImportSettings
from registry.resources import Registry
from registry.service import (
    MEMBER_FIELDS,
    AlreadyRegistered,
    ConsentNotRecorded,
    IdempotencyConflict,
    InvalidChange,
    MemberQuery,
    OutsideJurisdiction,
    find_members,
    member_in_scope,
    reconcile_embassies,
    register_member,
)

router = APIRouter(prefix="/members", tags=["members"])
_PREFIX = re.compile(r"(/[A-Za-z0-9._-]+){0,4}")

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid bearer token (problem details)"},
    403: {"description": "Your roles do not allow this function (problem details)"},
}


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


# Registrations and imports check each email domain once (same decisions, cached).
email_syntax.cache_domain_checks()


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


class AccessLogEntry(BaseModel):
    occurred_at: datetime
    action: str
    actor_roles: list[str]
    actor_subject: str = Field(description="The staff member's or system's id at the issuer.")
    actor_is_service: bool
    fields: list[str] = Field(description="The fields of the record they received.")
    service: str = Field(
        description="The service where the access happened (registry, matching, ...)."
    )


class AccessLogPage(BaseModel):
    items: list[AccessLogEntry]
    next_before: datetime | None


def _views(items: list[dict[str, Any]]) -> list[MemberView]:
    return [MemberView.model_validate(item) for item in items]


def invalid_field(field: str, message: str) -> Problem:
    """A 422 shaped like request validation errors, for checks made past the schema."""
    return Problem(
        422,
        "The request is not valid",
        detail="One or more fields are missing or invalid; see `errors`.",
        type_="https://diaspora.gouv.tg/problems/validation",
        errors=[{"field": field, "message": message, "code": "value_error"}],
    )


def _country(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return domain.normalise_country(value)
    except domain.InvalidRegistration as error:
        raise Problem(422, "Invalid country filter", detail=str(error)) from None


def _embassy(registry: Registry, value: str | None) -> str | None:
    if value is not None and value not in registry.identity.jurisdictions.embassies:
        raise Problem(422, "Unknown embassy", detail=f"{value!r} is not an embassy id")
    return value


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
    return MemberPage(items=_views(items[:limit]), next_offset=offset + limit if more else None)


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
    response.headers["ETag"] = f'"{member["version"]}"'
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
    query = MemberQuery(country=_country(country), embassy=_embassy(registry, embassy), limit=limit)
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
            embassy=_embassy(registry, embassy),
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
        documents_decision=_maybe(policy, principal, "member_document", "read"),
        cipher=registry.cipher,
    )
    if not found:
        raise Problem(404, "Member not found")
    if found[0].get("version") is not None:
        response.headers["ETag"] = f'"{found[0]["version"]}"'
    return MemberView.model_validate(found[0])


def _maybe(policy: Policy, principal: Principal, resource: str, action: str) -> Decision | None:
    """The caller's decision for an optional extra (e.g. document numbers), or None."""
    try:
        return policy.decide(principal, resource, action)
    except Forbidden:
        return None


@router.get(
    "/{member_id}/access-log",
    response_model=AccessLogPage,
    responses={**AUTH_RESPONSES, 404: {"description": "No such member within your scope"}},
)
async def read_access_log(
    member_id: UUID,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    before: datetime | None = None,
    limit: Limit = 50,
) -> AccessLogPage:
    """Who read or changed this member's record in any service (a person sees their own),
    newest first; other services' accesses arrive through their audit events."""
    decision = registry.identity.policy.decide(principal, "member_access_log", "list")
    if not await member_in_scope(
        sessions=registry.sessions, decision=decision, member_id=member_id
    ):
        raise Problem(404, "Member not found")
    rows = await access_log(
        sessions=registry.sessions, member_id=member_id, before=before, limit=limit + 1
    )
    items = [AccessLogEntry(**row) for row in rows[:limit]]
    return AccessLogPage(
        items=items, next_before=items[-1].occurred_at if len(rows) > limit else None
    )


def _reconcile(registry: Registry) -> Callable[[], Awaitable[None]]:
    """Re-derive every member's and association's embassy: the jurisdictions file may
    have changed since the last start."""

    async def job() -> None:
        jurisdictions = registry.identity.jurisdictions
        await reconcile_embassies(registry.sessions, jurisdictions)
        await reconcile_association_embassies(registry.sessions, jurisdictions)

    return job


def build_app(registry: Registry | None = None) -> FastAPI:
    # Imported here: search_api reuses this module's views.
    from registry.entrypoints import (
        freshness_api,
        reference_api,
        rights_api,
        search_api,
        statistics_api,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = registry is None
        app.state.registry = registry or bootstrap()
        app.state.identity = app.state.registry.identity
        app.state.trusted_proxies = app.state.registry.settings.trusted_proxies
        setup_observability(SERVICE_NAME, json_logs=app.state.registry.settings.json_logs)
        # Reference data loaded now, and out of the garbage collector's walks from here on.
        heap.warm_up()
        heap.freeze_long_lived()
        # In the background: the API starts (and reports "not ready") while the database
        # is down; until the chore has run, members and associations keep the embassy
        # derived under the previous jurisdictions file.
        reconciling = asyncio.create_task(
            retry_until_reachable("reconcile_embassies", _reconcile(app.state.registry))
        )
        try:
            yield
        finally:
            reconciling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reconciling
            if owned:
                await app.state.registry.close()

    async def database_ready() -> bool:
        ready: bool = await application.state.registry.database_ready()
        return ready

    application = create_app(
        title="Registry (RECOATEX)",
        version="0.1.0",
        description="Members of the Togolese diaspora: registration and profiles. "
        "Every call needs an OIDC bearer token; what it returns depends on the caller's "
        "roles and scopes (docs/security.md).",
        # Search first: `router`'s /members/{member_id} would otherwise take /members/search.
        routers=[
            search_api.router,
            statistics_api.router,
            freshness_api.router,
            router,
            rights_api.router,
            reference_api.router,
        ],
        lifespan=lifespan,
        readiness={"database": database_ready},
        # Authorized from the headers before a byte of the file is read, and capped.
        uploads=[
            UploadRoute(
                "POST",
                "/imports",
                upload_authorizer("member_import", "create"),
                ImportSettings().max_bytes,
            )
        ],
    )
    install_identity(application)
    application.include_router(associations_router)
    from registry.entrypoints import duplicates_api, imports_api

    application.include_router(imports_api.router)  # its lifespan runs the import runner
    application.include_router(duplicates_api.router)
    from registry.keys import api as keys_api

    application.include_router(keys_api.router)  # internal: not routed by the gateway
    application.add_middleware(RequestIdMiddleware)
    return application


def app() -> FastAPI:
    """Factory for `uvicorn --factory registry.entrypoints.http:app`."""
    return build_app()
