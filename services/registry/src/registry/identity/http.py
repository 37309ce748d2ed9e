"""Identity verification over HTTP.

- ``POST /members/{id}/identity-verifications``: an officer of the member's embassy (or
  an admin) records the evidence checked; the record's version moves on (If-Match), its
  level is the strongest unexpired check;
- ``GET /members/{id}/identity-verifications``: the checks recorded and the level today
  (the person, officers of their embassy, coordinators, admins; staff reads audited).

The member's own ``GET /members/{id}`` shows the level (``identity``).
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Request, Response

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
from registry.deps import RegistryDep, decision_if_allowed, invalid_field
from registry.identity.domain import InvalidEvidence
from registry.identity.schemas import (
    RecordedVerification,
    VerificationHistory,
    VerificationRequest,
)
from registry.identity.service import (
    IdempotencyConflict,
    record_verification,
    verification_history,
)
from registry.members.errors import MemberNotFound, VersionMismatch

router = APIRouter(prefix="/members", tags=["identity verification"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such member within your scope"}
}
INVALID: dict[int | str, dict[str, Any]] = {
    422: {"description": "The evidence cannot verify an identity (problem details)"}
}


@router.post(
    "/{member_id}/identity-verifications",
    status_code=201,
    response_model=RecordedVerification,
    responses={
        **AUTH_RESPONSES,
        **NOT_FOUND,
        **PRECONDITION_RESPONSES,
        **INVALID,
        200: {"description": "Repeated request (same Idempotency-Key): the first check"},
    },
)
async def verify_identity(
    member_id: UUID,
    body: VerificationRequest,
    registry: RegistryDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> RecordedVerification:
    """Record that you checked the person's identity document (kept as history)."""
    decision = registry.identity.policy.decide(principal, "member", "verify_identity")
    version = expected_version(if_match)
    try:
        verification, identity, new_version, created = await record_verification(
            sessions=registry.sessions,
            outbox=registry.outbox,
            audit=registry.audit,
            cipher=registry.cipher,
            decision=decision,
            context=AccessContext.of(request),
            member_id=member_id,
            evidence=body.evidence(),
            expected_version=version,
            idempotency_key=idempotency_key,
        )
    except InvalidEvidence as error:
        raise invalid_field(error.field, str(error)) from None
    except MemberNotFound:
        raise Problem(404, "Member not found") from None
    except VersionMismatch as error:
        raise version_conflict(error.current) from None
    except IdempotencyConflict:
        raise Problem(
            422,
            "Idempotency-Key already used",
            detail="This Idempotency-Key was used for a different request; use a new key.",
        ) from None
    if not created:
        response.status_code = 200
    set_etag(response, new_version)
    return RecordedVerification.model_validate(
        {"verification": verification, "identity": identity, "version": new_version}
    )


@router.get(
    "/{member_id}/identity-verifications",
    response_model=VerificationHistory,
    responses={**AUTH_RESPONSES, **NOT_FOUND},
)
async def identity_verifications(
    member_id: UUID, registry: RegistryDep, principal: CurrentPrincipal, request: Request
) -> VerificationHistory:
    """The identity checks recorded for the member, newest first, and the level today."""
    policy = registry.identity.policy
    decision = policy.decide(principal, "member", "identity_verifications")
    try:
        items, identity = await verification_history(
            sessions=registry.sessions,
            audit=registry.audit,
            cipher=registry.cipher,
            decision=decision,
            documents_decision=decision_if_allowed(policy, principal, "member_document", "read"),
            context=AccessContext.of(request),
            member_id=member_id,
        )
    except MemberNotFound:
        raise Problem(404, "Member not found") from None
    return VerificationHistory.model_validate({"identity": identity, "items": items})
