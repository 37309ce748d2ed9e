"""Contact verification: the link of an email (no bearer token: its secret is the proof)
and the caller's own contacts (``/me/contacts``)."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query

from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_identity.principal import Principal
from diaspora_service.problems import Problem
from diaspora_service.text import SingleLine
from notifications.contacts import verification
from notifications.contacts.schemas import (
    CodeConfirmIn,
    ContactOut,
    ContactsOut,
    LinkConfirmIn,
    VerificationSentOut,
    VerifiedOut,
)
from notifications.deps import IdentityDep, ServiceDep
from notifications.resources import Notifications

# The links opened from an email (last in the document, as they always were).
router = APIRouter(tags=["contacts"])
me_router = APIRouter(prefix="/me", tags=["me"], responses=AUTH_RESPONSES)


def _verification_problem(error: verification.VerificationError) -> Problem:
    return Problem(error.status, error.title, detail=error.detail)


def _member_of(principal: Principal) -> UUID:
    if principal.member_id is None:
        raise Problem(404, "Recipient not found", detail="Your account is not linked to a member.")
    return principal.member_id


async def _confirm_link(token: str, service: Notifications) -> VerifiedOut:
    try:
        at = await verification.confirm_email(service, token)
    except verification.VerificationError as error:
        raise _verification_problem(error) from None
    return VerifiedOut(kind="email", verified_at=at)


@router.post(
    "/contacts/email/confirm",
    response_model=VerifiedOut,
    responses={
        404: {"description": "Unknown or already used link"},
        410: {"description": "The link expired, or the address changed since"},
    },
)
async def confirm_email(body: LinkConfirmIn, service: ServiceDep) -> VerifiedOut:
    """Confirm an email address with the token of the link sent to it. No bearer token:
    the link's secret (single use, 24 h) is the proof of owning the address."""
    return await _confirm_link(body.token, service)


@router.get(
    "/contacts/email/confirm",
    response_model=VerifiedOut,
    responses={
        404: {"description": "Unknown or already used link"},
        410: {"description": "Expired"},
    },
)
async def confirm_email_link(
    token: Annotated[SingleLine, Query(min_length=16, max_length=200)], service: ServiceDep
) -> VerifiedOut:
    """The link itself (opened from the email): the same as the POST."""
    return await _confirm_link(token, service)


@me_router.get("/contacts", response_model=ContactsOut)
async def get_contacts(
    service: ServiceDep, identity: IdentityDep, principal: CurrentPrincipal
) -> ContactsOut:
    """Your email and phone as notifications knows them, and whether each is verified."""
    identity.policy.decide(principal, "contact_verification", "read")
    found = await verification.own_contacts(service, _member_of(principal))
    if found is None:
        raise Problem(404, "Recipient not found")
    return ContactsOut(
        email=ContactOut(address=found.email, verified=found.email_verified),
        phone=ContactOut(address=found.phone, verified=found.phone_verified),
    )


@me_router.post(
    "/contacts/phone/confirm",
    response_model=VerifiedOut,
    responses={
        404: {"description": "No code awaiting confirmation"},
        409: {"description": "Too many wrong codes: ask for a new one"},
        410: {"description": "The code expired"},
        422: {"description": "Wrong code"},
    },
)
async def confirm_phone(
    body: CodeConfirmIn, service: ServiceDep, identity: IdentityDep, principal: CurrentPrincipal
) -> VerifiedOut:
    """Confirm your phone number with the 6-digit code sent to it by SMS (15 min, 5 tries)."""
    identity.policy.decide(principal, "contact_verification", "confirm")
    member_id = _member_of(principal)
    if await verification.own_contacts(service, member_id) is None:
        raise Problem(404, "Recipient not found")
    try:
        at = await verification.confirm_phone(service, member_id, body.code)
    except verification.VerificationError as error:
        raise _verification_problem(error) from None
    return VerifiedOut(kind="phone", verified_at=at)


@me_router.post(
    "/contacts/{kind}/resend",
    response_model=VerificationSentOut,
    status_code=201,
    responses={
        409: {"description": "Already verified, or no such contact"},
        429: {"description": "Too many sends to this address or account (Retry-After)"},
    },
)
async def resend_verification(
    kind: Literal["email", "phone"],
    service: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
) -> VerificationSentOut:
    """Send a new verification link (email) or code (phone); earlier ones stop working.
    At most 3 per hour per address and 6 per account (settings)."""
    identity.policy.decide(principal, "contact_verification", "resend")
    member_id = _member_of(principal)
    try:
        delivery_id = await verification.resend(service, member_id, kind)
    except verification.VerificationError as error:
        raise _verification_problem(error) from None
    except verification.RateLimited as limited:
        raise Problem(
            429,
            "Too many verification messages",
            detail=f"Try again in {limited.retry_after} seconds.",
            headers={"Retry-After": str(limited.retry_after)},
        ) from None
    return VerificationSentOut(kind=kind, delivery_id=delivery_id)
