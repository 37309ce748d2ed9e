"""HTTP interface of awareness subscriptions (`/subscriptions`): public, no token.

People in Togo (not diaspora members) subscribe by email or phone to migration awareness
messages and to the advisories of countries they choose, accepting the consent text
(its version and the time are kept). Nothing but a confirmation link is sent before they
confirm it (double opt-in). Every message carries a signed one-step unsubscribe link
(no login). Requests are limited per address and per client address and hour (429 with
``Retry-After``), on top of the gateway's per-address rate limit.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request

from diaspora_identity.audit import AccessContext
from diaspora_service.problems import TYPE_BASE, Problem
from returnees.deps import ServiceDep
from returnees.resources import Returnees
from returnees.subscribers import domain, service
from returnees.subscribers.schemas import (
    ConfirmRequest,
    ConsentText,
    NewSubscription,
    SubscriptionRequested,
    SubscriptionState,
    Token,
)

router = APIRouter(prefix="/subscriptions", tags=["subscriptions"])

LINK_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown, used or forged link"},
    410: {"description": "The confirmation link expired: subscribe again"},
}


def now() -> datetime:
    return datetime.now(UTC)


def _limits(svc: Returnees) -> service.Limits:
    settings = svc.settings
    return service.Limits(
        per_address_per_hour=settings.subscriptions_per_address_per_hour,
        per_client_per_hour=settings.subscriptions_per_client_per_hour,
        confirm_ttl=timedelta(hours=settings.subscription_confirm_ttl_hours),
    )


def _key(svc: Returnees) -> bytes:
    return svc.settings.subscription_link_secret().encode()


def _base(svc: Returnees) -> str:
    return svc.settings.public_base_url.rstrip("/")


@router.get("/consent", response_model=ConsentText)
async def consent_text() -> ConsentText:
    """The consent text to show (French, English) and its version, to send back."""
    version = domain.CURRENT_CONSENT_VERSION
    return ConsentText(version=version, text=domain.CONSENT_TEXTS[version])


@router.post(
    "",
    response_model=SubscriptionRequested,
    status_code=202,
    responses={
        422: {"description": "Invalid request, or an outdated consent text (problem details)"},
        429: {"description": "Too many requests for this address or from this client"},
    },
)
async def subscribe(
    body: NewSubscription, svc: ServiceDep, request: Request
) -> SubscriptionRequested:
    """Subscribe (no token). A confirmation link goes to the address; nothing else is
    sent before it is opened. The answer is the same whether or not the address is
    already subscribed."""
    if body.consent.text_version != domain.CURRENT_CONSENT_VERSION:
        raise Problem(
            422,
            "Outdated consent text",
            detail=(
                f"the consent text is now version {domain.CURRENT_CONSENT_VERSION}: show it "
                "(GET /subscriptions/consent) and send its version"
            ),
            type_=TYPE_BASE + "validation",
            errors=[{"field": "consent.text_version", "message": "outdated", "code": "outdated"}],
        )
    client = AccessContext.of(request).client_address or "unknown"
    base = _base(svc)
    at = now()
    async with svc.sessions() as session, session.begin():
        try:
            row = await service.subscribe(
                session,
                svc.outbox,
                channel=body.channel,
                address=body.address,
                language=body.language,
                awareness=body.awareness,
                countries=body.countries,
                consent_text_version=body.consent.text_version,
                client_hash=domain.digest("client", client),
                limits=_limits(svc),
                confirm_link=lambda token: f"{base}/subscriptions/confirm?token={token}",
                now=at,
            )
        except service.RateLimited as limited:
            raise Problem(
                429,
                "Too many requests",
                detail=str(limited),
                type_=TYPE_BASE + "rate-limited",
                headers={"Retry-After": str(limited.retry_after)},
            ) from None
    return SubscriptionRequested(
        detail="A confirmation link was sent; open it to start receiving messages.",
        expires_at=row["confirm_expires_at"],
    )


async def _confirm(svc: Returnees, token: str) -> SubscriptionState:
    key, base = _key(svc), _base(svc)
    at = now()
    async with svc.sessions() as session, session.begin():
        try:
            await service.confirm(
                session,
                svc.outbox,
                token,
                unsubscribe_link=lambda subscriber_id: (
                    f"{base}/subscriptions/unsubscribe?token="
                    f"{domain.unsubscribe_token(key, subscriber_id)}"
                ),
                now=at,
            )
        except service.UnknownToken:
            raise Problem(404, "Not found", detail="Unknown or already used link.") from None
        except service.ExpiredToken:
            raise Problem(
                410, "Link expired", detail="This link expired: subscribe again."
            ) from None
    return SubscriptionState(status="active", at=at)


@router.get("/confirm", response_model=SubscriptionState, responses=LINK_RESPONSES)
async def confirm_link(token: Annotated[Token, Query()], svc: ServiceDep) -> SubscriptionState:
    """Open the confirmation link (no token): the subscription starts."""
    return await _confirm(svc, token)


@router.post("/confirm", response_model=SubscriptionState, responses=LINK_RESPONSES)
async def confirm_post(body: ConfirmRequest, svc: ServiceDep) -> SubscriptionState:
    """The same, posted by a page that shows the link's result."""
    return await _confirm(svc, body.token)


async def _unsubscribe(svc: Returnees, token: str) -> SubscriptionState:
    subscriber_id: UUID | None = domain.verify_unsubscribe_token(_key(svc), token)
    if subscriber_id is None:
        raise Problem(404, "Not found", detail="Unknown or forged link.")
    at = now()
    async with svc.sessions() as session, session.begin():
        await service.unsubscribe(session, svc.outbox, subscriber_id, now=at)
    return SubscriptionState(status="unsubscribed", at=at)


@router.get(
    "/unsubscribe",
    response_model=SubscriptionState,
    responses={404: {"description": "Forged or damaged link"}},
)
async def unsubscribe_link(token: Annotated[Token, Query()], svc: ServiceDep) -> SubscriptionState:
    """The one-step unsubscribe link of every message (signed; no login). Opening it
    again answers the same."""
    return await _unsubscribe(svc, token)


@router.post(
    "/unsubscribe",
    response_model=SubscriptionState,
    responses={404: {"description": "Forged or damaged link"}},
)
async def unsubscribe_post(token: Annotated[Token, Query()], svc: ServiceDep) -> SubscriptionState:
    """The same as a POST (RFC 8058 one-click, from a mail client)."""
    return await _unsubscribe(svc, token)
