"""The citizen's own preferences and inbox (``/me``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request

from diaspora_identity.audit import AccessContext
from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_identity.principal import Principal
from diaspora_service.problems import Problem
from notifications.deps import IdentityDep, ServiceDep
from notifications.preferences import service as preferences_service
from notifications.preferences.domain import CATEGORIES, Preferences, valid_zone
from notifications.preferences.schemas import (
    CategoryOut,
    InboxMessageOut,
    InboxPage,
    PreferencesIn,
    PreferencesOut,
    QuietHours,
)
from notifications.problems import invalid
from notifications.resources import Notifications

router = APIRouter(prefix="/me", tags=["me"], responses=AUTH_RESPONSES)


async def _own_member(principal: Principal, service: Notifications) -> UUID:
    if principal.member_id is None:
        raise Problem(404, "Recipient not found", detail="Your account is not linked to a member.")
    if not await preferences_service.recipient_exists(service, principal.member_id):
        raise Problem(404, "Recipient not found")
    return principal.member_id


def _preferences_out(found: tuple[Preferences, str | None] | None) -> PreferencesOut:
    assert found is not None
    prefs, country = found
    return PreferencesOut(
        channels=list(prefs.channels),
        timezone=prefs.timezone,
        quiet_hours=(
            QuietHours(start=prefs.quiet_start, end=prefs.quiet_end)
            if prefs.quiet_start and prefs.quiet_end
            else None
        ),
        opted_out=sorted(prefs.opted_out),
        consents=sorted(prefs.consents),
        effective_timezone=prefs.zone(country),
        categories=[
            CategoryOut(
                name=c.name,
                description=c.description,
                mandatory=c.mandatory,
                needs_consent=c.needs_consent,
            )
            for c in CATEGORIES.values()
        ],
    )


@router.get("/preferences", response_model=PreferencesOut)
async def get_preferences(
    service: ServiceDep, identity: IdentityDep, principal: CurrentPrincipal
) -> PreferencesOut:
    identity.policy.decide(principal, "notification_preferences", "read")
    member_id = await _own_member(principal, service)
    return _preferences_out(await preferences_service.preferences_of(service, member_id))


@router.put(
    "/preferences",
    response_model=PreferencesOut,
    responses={422: {"description": "Unknown channel, zone or category; a mandatory opt-out"}},
)
async def put_preferences(
    body: PreferencesIn, service: ServiceDep, identity: IdentityDep, principal: CurrentPrincipal
) -> PreferencesOut:
    """Replace your preferences. Legal and safety messages cannot be silenced."""
    identity.policy.decide(principal, "notification_preferences", "update")
    member_id = await _own_member(principal, service)
    errors = []
    if len(set(body.channels)) != len(body.channels):
        errors.append({"field": "channels", "message": "a channel is listed twice"})
    if body.timezone is not None and not valid_zone(body.timezone):
        errors.append({"field": "timezone", "message": f"unknown time zone {body.timezone!r}"})
    for name in body.opted_out:
        if name not in CATEGORIES:
            errors.append({"field": "opted_out", "message": f"unknown category {name!r}"})
        elif CATEGORIES[name].mandatory:
            errors.append({"field": "opted_out", "message": f"{name} messages cannot be silenced"})
    for name in body.consents:
        if name not in CATEGORIES:
            errors.append({"field": "consents", "message": f"unknown category {name!r}"})
    if errors:
        raise invalid("The preferences are not valid", errors)
    values = {
        "channels": list(body.channels),
        "timezone": body.timezone,
        "quiet_start": body.quiet_hours.start if body.quiet_hours else None,
        "quiet_end": body.quiet_hours.end if body.quiet_hours else None,
        "opted_out": sorted(set(body.opted_out)),
        "consents": sorted(set(body.consents)),
    }
    return _preferences_out(
        await preferences_service.replace_preferences(service, member_id, values)
    )


@router.get("/inbox", response_model=InboxPage)
async def list_inbox(
    request: Request,
    service: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: datetime | None = None,
) -> InboxPage:
    """Your in-app messages, newest first (keyset pagination on `before`).

    Only citizens hold this grant today; should a staff role get one, each person whose
    messages it reads gets an audit entry (resource inbox_message, record id = member)."""
    decision = identity.policy.decide(principal, "inbox_message", "list")
    rows, unread_count = await preferences_service.list_inbox(
        service,
        decision,
        AccessContext.of(request),
        reader=principal.member_id,
        unread=unread,
        limit=limit,
        before=before,
    )
    items = [InboxMessageOut.model_validate(r, from_attributes=True) for r in rows[:limit]]
    return InboxPage(
        items=items,
        unread=unread_count,
        next_before=items[-1].created_at if len(rows) > limit else None,
    )


@router.post("/inbox/{message_id}/read", response_model=InboxMessageOut)
async def mark_read(
    message_id: UUID, service: ServiceDep, identity: IdentityDep, principal: CurrentPrincipal
) -> InboxMessageOut:
    decision = identity.policy.decide(principal, "inbox_message", "mark_read")
    row = await preferences_service.mark_read(service, decision, message_id)
    if row is None:
        raise Problem(404, "Message not found")
    return InboxMessageOut.model_validate(row, from_attributes=True)
