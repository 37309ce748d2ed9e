"""Keeping a profile true and the rights of the person, over HTTP.

- ``PATCH /members/{id}``: self-service update, or correction by staff in scope (If-Match);
- ``POST /members/{id}/confirm``: the person confirms the profile is still true;
- ``GET /members/{id}/history``: who changed what, when;
- ``GET /members/{id}/export``: everything held on the person (JSON);
- ``GET|PUT|DELETE /members/{id}/consents[/{purpose}]``: consents and their withdrawal;
- ``DELETE /members/{id}``: erasure.

Every route asks the policy (docs/security.md) and answers 404 outside the caller's scope.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from diaspora_identity.audit import AccessContext
from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_service.conditional import (
    PRECONDITION_RESPONSES,
    IfMatch,
    expected_version,
    set_etag,
    version_conflict,
)
from diaspora_service.problems import Problem
from diaspora_service.text import SingleLine
from registry.deps import RegistryDep, decision_if_allowed, invalid_field
from registry.members import domain, profile
from registry.members.changes import confirm_member, update_member
from registry.members.errors import InvalidChange, MemberNotFound, VersionMismatch
from registry.members.reads import member_history
from registry.members.records import MEMBER_FIELDS
from registry.members.schemas import MemberView, ProfileFields
from registry.rights.service import (
    ConsentMethodRequired,
    consents,
    erase_member,
    export_member,
    set_consent,
)

router = APIRouter(prefix="/members", tags=["profile and rights"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such member within your scope"}
}
PRECONDITION = PRECONDITION_RESPONSES


def _not_found() -> Problem:
    return Problem(404, "Member not found")


class UpdateRequest(ProfileFields):
    """The fields to change; absent fields stay as they are, null clears an optional one.
    Lists (languages, occupations, skills, education, experience, documents) are replaced
    whole."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    given_name: SingleLine | None = Field(None, min_length=1, max_length=100)
    family_name: SingleLine | None = Field(None, min_length=1, max_length=100)
    date_of_birth: date | None = None
    country_of_residence: SingleLine | None = Field(None, min_length=2, max_length=2)
    email: EmailStr | None = None
    phone: SingleLine | None = Field(None, min_length=4, max_length=32)
    preferred_language: domain.Language | None = None

    @field_validator("date_of_birth")
    @classmethod
    def _birth(cls, value: date | None) -> date | None:
        return None if value is None else domain.check_birth_date(value)

    @field_validator("country_of_residence")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return None if value is None else domain.normalise_country(value)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return None if value is None else domain.normalise_phone(value)

    def changes(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if isinstance(value, list):
                value = tuple(value)
            if name == "email" and value is not None:
                value = str(value)
            out[name] = value
        return out


def _record_view(record: dict[str, Any], response: Response) -> MemberView:
    set_etag(response, record["version"])
    return MemberView.model_validate({f: record[f] for f in MEMBER_FIELDS if f in record})


@router.patch(
    "/{member_id}",
    response_model=MemberView,
    response_model_exclude_unset=True,
    responses={**AUTH_RESPONSES, **NOT_FOUND, **PRECONDITION},
)
async def update(
    member_id: UUID,
    body: UpdateRequest,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> MemberView:
    """Change your profile, or correct a record within your scope (kept in the history)."""
    decision = registry.identity.policy.decide(principal, "member", "update")
    version = expected_version(if_match)
    try:
        record, _ = await update_member(
            sessions=registry.sessions,
            outbox=registry.outbox,
            audit=registry.audit,
            jurisdictions=registry.identity.jurisdictions,
            cipher=registry.cipher,
            decision=decision,
            context=AccessContext.of(request),
            command=domain.UpdateMember(
                member_id=member_id, changes=body.changes(), expected_version=version
            ),
        )
    except MemberNotFound:
        raise _not_found() from None
    except VersionMismatch as error:
        raise version_conflict(error.current) from None
    except InvalidChange as error:
        raise invalid_field(error.field, str(error)) from None
    # What the caller sees of the record after the change: the same read as GET.
    return _record_view(record, response)


@router.post(
    "/{member_id}/confirm",
    response_model=MemberView,
    response_model_exclude_unset=True,
    responses={**AUTH_RESPONSES, **NOT_FOUND, **PRECONDITION},
)
async def confirm(
    member_id: UUID,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> MemberView:
    """Confirm that the profile is still true (update campaigns ask for it)."""
    decision = registry.identity.policy.decide(principal, "member", "confirm")
    try:
        record = await confirm_member(
            sessions=registry.sessions,
            outbox=registry.outbox,
            audit=registry.audit,
            decision=decision,
            context=AccessContext.of(request),
            member_id=member_id,
            expected_version=expected_version(if_match),
        )
    except MemberNotFound:
        raise _not_found() from None
    except VersionMismatch as error:
        raise version_conflict(error.current) from None
    return _record_view(record, response)


class Change(BaseModel):
    id: int = Field(description="Position in the history (use as `before` for older ones).")
    changed_at: datetime
    action: str = Field(
        description="registered, updated, confirmed, consent_granted, consent_withdrawn"
    )
    actor_role: str = Field(description="citizen when the person did it")
    actor_subject: str | None = Field(None, description="Staff only: who, at the issuer")
    fields: list[str]
    old_values: dict[str, Any]
    new_values: dict[str, Any] = Field(description="Document numbers never appear here.")
    version: int


class HistoryPage(BaseModel):
    items: list[Change]
    next_before: int | None = None


@router.get(
    "/{member_id}/history",
    response_model=HistoryPage,
    responses={**AUTH_RESPONSES, **NOT_FOUND},
)
async def history(
    member_id: UUID,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    request: Request,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> HistoryPage:
    """Who changed what in the record, and when, newest first (staff reads are audited)."""
    decision = registry.identity.policy.decide(principal, "member_history", "list")
    try:
        rows = await member_history(
            sessions=registry.sessions,
            audit=registry.audit,
            decision=decision,
            context=AccessContext.of(request),
            member_id=member_id,
            before_id=before,
            limit=limit + 1,
        )
    except MemberNotFound:
        raise _not_found() from None
    items = [Change(**row) for row in rows[:limit]]
    return HistoryPage(items=items, next_before=items[-1].id if len(rows) > limit else None)


@router.get(
    "/{member_id}/export",
    responses={
        **AUTH_RESPONSES,
        **NOT_FOUND,
        200: {"description": "Everything the registry holds on the person (JSON)"},
    },
)
async def export(
    member_id: UUID, registry: RegistryDep, principal: CurrentPrincipal, request: Request
) -> Response:
    """Your data, all of it: the record, consents, history and access log (a download)."""
    policy = registry.identity.policy
    decision = policy.decide(principal, "member_data_export", "export")
    try:
        data = await export_member(
            sessions=registry.sessions,
            audit=registry.audit,
            cipher=registry.cipher,
            decision=decision,
            documents_decision=decision_if_allowed(policy, principal, "member_document", "read"),
            context=AccessContext.of(request),
            member_id=member_id,
        )
    except MemberNotFound:
        raise _not_found() from None
    return JSONResponse(
        jsonable_encoder(data),
        headers={
            "Content-Disposition": f'attachment; filename="member-{member_id}.json"',
            "Cache-Control": "no-store",
        },
    )


class ConsentState(BaseModel):
    purpose: str
    granted: bool
    at: datetime


class ConsentDecision(ConsentState):
    method: str = Field(description="self_service, signed_form or in_person")
    actor_role: str
    actor_subject: str | None = None


class Consents(BaseModel):
    member_id: UUID
    current: list[ConsentState]
    history: list[ConsentDecision] = Field(description="Every decision, newest first.")


@router.get(
    "/{member_id}/consents",
    response_model=Consents,
    responses={**AUTH_RESPONSES, **NOT_FOUND},
)
async def read_consents(
    member_id: UUID, registry: RegistryDep, principal: CurrentPrincipal, request: Request
) -> dict[str, Any]:
    """The person's consent per purpose, with every earlier decision."""
    decision = registry.identity.policy.decide(principal, "member_consent", "read")
    try:
        return await consents(
            sessions=registry.sessions,
            audit=registry.audit,
            decision=decision,
            context=AccessContext.of(request),
            member_id=member_id,
        )
    except MemberNotFound:
        raise _not_found() from None


class ConsentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: profile.ConsentMethod | None = Field(
        None,
        description="Staff recording it: how the person expressed it (signed_form, in_person). "
        "Ignored when the person acts themselves.",
    )


async def _set(
    member_id: UUID,
    purpose: profile.ConsentPurpose,
    granted: bool,
    method: profile.ConsentMethod | None,
    registry: Any,
    principal: Any,
    request: Request,
    response: Response,
    if_match: str | None,
) -> MemberView:
    decision = registry.identity.policy.decide(
        principal, "member_consent", "grant" if granted else "withdraw"
    )
    try:
        record = await set_consent(
            sessions=registry.sessions,
            outbox_writer=registry.outbox,
            audit=registry.audit,
            decision=decision,
            context=AccessContext.of(request),
            member_id=member_id,
            purpose=purpose,
            granted=granted,
            method=method,
            expected_version=expected_version(if_match),
        )
    except MemberNotFound:
        raise _not_found() from None
    except VersionMismatch as error:
        raise version_conflict(error.current) from None
    except ConsentMethodRequired:
        raise invalid_field(
            "method", "staff recording a consent say how it was given: signed_form or in_person"
        ) from None
    return _record_view(record, response)


@router.put(
    "/{member_id}/consents/{purpose}",
    response_model=MemberView,
    response_model_exclude_unset=True,
    responses={**AUTH_RESPONSES, **NOT_FOUND, **PRECONDITION},
)
async def grant_consent(
    member_id: UUID,
    purpose: profile.ConsentPurpose,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
    body: Annotated[ConsentRequest | None, Body()] = None,
    if_match: IfMatch = None,
) -> MemberView:
    """Give consent for a purpose (contact_for_missions, statistics, newsletters)."""
    method = body.method if body else None
    return await _set(
        member_id, purpose, True, method, registry, principal, request, response, if_match
    )


@router.delete(
    "/{member_id}/consents/{purpose}",
    response_model=MemberView,
    response_model_exclude_unset=True,
    responses={**AUTH_RESPONSES, **NOT_FOUND, **PRECONDITION},
)
async def withdraw_consent(
    member_id: UUID,
    purpose: profile.ConsentPurpose,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> MemberView:
    """Withdraw consent for a purpose; it takes effect at once (and reaches every service)."""
    return await _set(
        member_id, purpose, False, None, registry, principal, request, response, if_match
    )


@router.delete(
    "/{member_id}",
    status_code=204,
    response_class=Response,
    responses={**AUTH_RESPONSES, **NOT_FOUND, **PRECONDITION},
)
async def erase(
    member_id: UUID,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    request: Request,
    if_match: IfMatch = None,
) -> Response:
    """Erase the person's data from the registry; every other service is told to erase
    theirs (registry.member.erased). This cannot be undone."""
    decision = registry.identity.policy.decide(principal, "member_erasure", "erase")
    try:
        await erase_member(
            sessions=registry.sessions,
            outbox_writer=registry.outbox,
            audit=registry.audit,
            decision=decision,
            context=AccessContext.of(request),
            member_id=member_id,
            steps=registry.erasure_steps,
            expected_version=expected_version(if_match),
        )
    except MemberNotFound:
        raise _not_found() from None
    except VersionMismatch as error:
        raise version_conflict(error.current) from None
    return Response(status_code=204)
