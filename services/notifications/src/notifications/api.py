"""HTTP routes beyond the delivery log: templates, preferences, inbox, resend, campaigns.

Every route decides through the policy table (diaspora_identity ``policy.yaml``):
templates are the admin's, campaigns the ministry coordinator's (and admin's), a
citizen reads their own inbox and edits their own preferences, a resend is for
an admin or an embassy officer within the jurisdiction.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, time
from typing import Annotated, Any, Literal
from uuid import UUID

import uuid_utils.compat as uuid_compat
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_identity.audit import AccessContext
from diaspora_identity.http import CurrentPrincipal, Identity
from diaspora_identity.principal import Principal
from diaspora_service.problems import TYPE_BASE, Problem
from diaspora_service.text import MultiLine, SingleLine, control_character
from notifications import verification
from notifications.adapters.orm import (
    campaigns,
    deliveries,
    inbox_messages,
    preferences,
    recipients,
    templates,
)
from notifications.audit import INBOX_FIELDS, TEMPLATE_FIELDS, audit_trail, template_record_id
from notifications.bootstrap import Notifications
from notifications.campaigns import Segment, audience_size, progress
from notifications.categories import CATEGORIES
from notifications.dispatch import enqueue, load_target
from notifications.preferences import CHANNELS, DEFAULT_CHANNELS, Preferences, valid_zone
from notifications.templates import (
    BUILTIN_VARIABLES,
    TemplateInvalid,
    TemplateVersion,
    check,
    latest_active_all,
    render_version,
    save_version,
)

RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid bearer token (problem details)"},
    403: {"description": "Your roles do not allow this function (problem details)"},
}
# Variables every per-person message gets from the recipient record.
PERSON_VARIABLES = frozenset({"given_name", "family_name"})
RESEND_NAMESPACE = uuid.UUID("6f1c1d1e-8a43-4c1e-9a55-2f1d0c6b7a10")


def _service(request: Request) -> Notifications:
    service: Notifications = request.app.state.service
    return service


def _identity(request: Request) -> Identity:
    identity: Identity = request.app.state.identity
    return identity


ServiceDep = Annotated[Notifications, Depends(_service)]
IdentityDep = Annotated[Identity, Depends(_identity)]


def _invalid(title: str, errors: list[dict[str, str]]) -> Problem:
    return Problem(422, title, type_=TYPE_BASE + "validation", errors=errors)


def _plain_values(value: dict[str, Any]) -> dict[str, Any]:
    """Template variables' values (JSON): no control character in any text, at any depth
    (the same rule as ``MultiLine``: line feeds and tabs only; names are ``SingleLine``)."""

    def visit(item: Any, path: str) -> None:
        if isinstance(item, str):
            found = control_character(item, multiline=True)
            if found is not None:
                raise ValueError(f"{path}: control characters are not allowed here ({found})")
        elif isinstance(item, dict):
            for key, inner in item.items():
                if control_character(str(key)) is not None:
                    raise ValueError(f"{path}: control characters in a name")
                visit(inner, f"{path}.{key}")
        elif isinstance(item, list):
            for index, inner in enumerate(item):
                visit(inner, f"{path}[{index}]")

    visit(value, "variables")
    return value


Variables = Annotated[dict[str, Any], AfterValidator(_plain_values)]


# -- templates ---------------------------------------------------------------------

templates_router = APIRouter(prefix="/templates", tags=["templates"], responses=RESPONSES)
Language = Annotated[str, Field(pattern=r"^[a-z]{2}$")]


class TemplateOut(BaseModel):
    key: str
    language: str
    version: int
    category: str
    subject: str
    body: str
    sms: str
    variables: dict[str, Any]
    active: bool
    created_by: str
    created_at: datetime


class TemplateSummary(BaseModel):
    key: str
    language: str
    version: int
    category: str
    active: bool
    created_at: datetime


class TemplatePage(BaseModel):
    items: list[TemplateSummary]
    next_offset: int | None


class TemplateIn(BaseModel):
    subject: SingleLine = Field(max_length=500)
    body: MultiLine = Field(max_length=20_000)
    sms: MultiLine = Field(max_length=1_000)
    category: SingleLine | None = Field(
        default=None, description="Default: the previous version's."
    )
    variables: Variables | None = Field(
        default=None,
        description="Declared variables, name -> sample value. Default: the previous version's.",
    )
    active: bool = Field(default=True, description="false: a draft, kept but not sent.")


class PreviewIn(BaseModel):
    variables: Variables | None = Field(
        default=None, description="Values to render with; default: the declared samples."
    )
    version: int | None = None
    draft: TemplateIn | None = Field(default=None, description="Preview unsaved text instead.")


class PreviewOut(BaseModel):
    key: str
    language: str
    version: int | None
    subject: str
    body: str
    sms: str


def _check_language(language: str) -> None:
    if len(language) != 2 or not language.isalpha() or not language.islower():
        raise _invalid(
            "Unknown language", [{"part": "language", "message": "two lowercase letters"}]
        )


async def _version(service: Notifications, key: str, language: str, version: int | None) -> Any:
    query = select(templates).where(templates.c.key == key, templates.c.language == language)
    if version is not None:
        query = query.where(templates.c.version == version)
    async with service.sessions() as session:
        row = (await session.execute(query.order_by(templates.c.version.desc()).limit(1))).first()
    if row is None:
        raise Problem(404, "Template not found")
    return row


@templates_router.get("", response_model=TemplatePage)
async def list_templates(
    service: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> TemplatePage:
    """The latest version of every template, per key and language."""
    identity.policy.decide(principal, "notification_template", "list")
    latest = (
        select(templates)
        .ext(distinct_on(templates.c.key, templates.c.language))
        .order_by(templates.c.key, templates.c.language, templates.c.version.desc())
        .subquery()
    )
    async with service.sessions() as session:
        rows = (
            await session.execute(
                select(latest)
                .order_by(latest.c.key, latest.c.language)
                .offset(offset)
                .limit(limit + 1)
            )
        ).all()
    items = [TemplateSummary.model_validate(r, from_attributes=True) for r in rows[:limit]]
    return TemplatePage(items=items, next_offset=offset + limit if len(rows) > limit else None)


@templates_router.get("/{key}/{language}", response_model=TemplateOut)
async def get_template(
    key: str,
    language: str,
    service: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    version: int | None = None,
) -> TemplateOut:
    """One version (default: the latest saved, active or not)."""
    identity.policy.decide(principal, "notification_template", "read")
    row = await _version(service, key, language, version)
    return TemplateOut.model_validate(row, from_attributes=True)


@templates_router.get("/{key}/{language}/versions", response_model=list[TemplateSummary])
async def list_versions(
    key: str, language: str, service: ServiceDep, identity: IdentityDep, principal: CurrentPrincipal
) -> list[TemplateSummary]:
    identity.policy.decide(principal, "notification_template", "read")
    async with service.sessions() as session:
        rows = await session.execute(
            select(templates)
            .where(templates.c.key == key, templates.c.language == language)
            .order_by(templates.c.version.desc())
        )
        return [TemplateSummary.model_validate(r, from_attributes=True) for r in rows]


@templates_router.put(
    "/{key}/{language}",
    response_model=TemplateOut,
    status_code=201,
    responses={422: {"description": "Undeclared or missing variable, syntax error"}},
)
async def save_template(
    key: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{1,63}$")],
    language: str,
    body: TemplateIn,
    request: Request,
    service: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
) -> TemplateOut:
    """Save a new version. Every variable the text uses must be declared, and the text
    must render with the declared samples: a broken template is refused here, never at
    send time. Templates render in a sandbox: only declared variables, the listed filters,
    no calls, no globals (docs/notifications.md). The save is audited."""
    decision = identity.policy.decide(principal, "notification_template", "save")
    _check_language(language)
    async with service.sessions() as session, session.begin():
        previous = (
            await session.execute(
                select(templates)
                .where(templates.c.key == key)
                .order_by((templates.c.language == language).desc(), templates.c.version.desc())
                .limit(1)
            )
        ).first()
        category_name = body.category or (previous.category if previous else None)
        variables = (
            body.variables
            if body.variables is not None
            else (dict(previous.variables) if previous else None)
        )
        if category_name is None or variables is None:
            raise _invalid(
                "A new template needs its category and variables",
                [{"part": "category", "message": "give category and variables"}],
            )
        try:
            saved = await save_version(
                session,
                key=key,
                language=language,
                category_name=category_name,
                parts={"subject": body.subject, "body": body.body, "sms": body.sms},
                variables=variables,
                active=body.active,
                author=principal.subject,
            )
        except TemplateInvalid as error:
            raise _invalid("The template is not valid", error.errors) from None
        row = (await session.execute(select(templates).where(templates.c.id == saved.id))).one()
        await audit_trail(service.outbox).record(
            session, decision, AccessContext.of(request), [(saved.id, TEMPLATE_FIELDS)]
        )
    return TemplateOut.model_validate(row, from_attributes=True)


@templates_router.post(
    "/{key}/{language}/preview",
    response_model=PreviewOut,
    responses={422: {"description": "Not allowed in a template, undeclared variable"}},
)
async def preview_template(
    key: str,
    language: str,
    body: PreviewIn,
    request: Request,
    service: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
) -> PreviewOut:
    """Render a saved version (or an unsaved draft) with sample or given variables.

    The text is checked as at save time (sandbox rules, declared variables) before it
    renders, and only declared variables may be given. The preview is audited."""
    decision = identity.policy.decide(principal, "notification_template", "preview")
    if body.draft is not None:
        previous = None
        with contextlib.suppress(Problem):
            previous = await _version(service, key, language, None)
        variables = body.draft.variables or (dict(previous.variables) if previous else {})
        version = TemplateVersion(
            id=uuid_compat.uuid7(),
            key=key,
            language=language,
            version=0,
            category=body.draft.category or (previous.category if previous else "account"),
            subject=body.draft.subject,
            body=body.draft.body,
            sms=body.draft.sms,
            variables=variables,
            active=False,
        )
        record_id = previous.id if previous is not None else template_record_id(key, language)
    else:
        version = TemplateVersion.of(await _version(service, key, language, body.version))
        record_id = version.id
    unknown = sorted(set(body.variables or {}) - set(version.variables))
    if unknown:
        raise _invalid(
            "Only the template's declared variables may be given",
            [{"part": "variables", "message": f"undeclared: {', '.join(unknown)}"}],
        )
    try:
        check(
            {"subject": version.subject, "body": version.body, "sms": version.sms},
            version.variables,
            category_name=version.category,
        )
    except TemplateInvalid as error:
        raise _invalid("The template is not valid", error.errors) from None
    values = {**version.variables, **(body.variables or {})}
    try:
        rendered = render_version(version, values, locale=language)
    except Exception as error:
        raise _invalid(
            "The template does not render", [{"part": "template", "message": str(error)}]
        ) from None
    async with service.sessions() as session, session.begin():
        await audit_trail(service.outbox).record(
            session, decision, AccessContext.of(request), [(record_id, TEMPLATE_FIELDS)]
        )
    return PreviewOut(
        key=key,
        language=language,
        version=version.version or None,
        subject=rendered.subject,
        body=rendered.body,
        sms=rendered.sms,
    )


# -- the citizen's own: preferences and inbox --------------------------------------

me_router = APIRouter(prefix="/me", tags=["me"], responses=RESPONSES)


class QuietHours(BaseModel):
    start: time = Field(description="Local time in the person's zone, e.g. 22:00.")
    end: time = Field(description="Local time; may be the next morning, e.g. 07:00.")


class CategoryOut(BaseModel):
    name: str
    description: str
    mandatory: bool
    needs_consent: bool


class PreferencesIn(BaseModel):
    channels: list[Literal["email", "sms", "inbox"]] = Field(
        min_length=1, description="In order of preference; the next one is the fallback."
    )
    timezone: SingleLine | None = Field(
        default=None, description="IANA zone; null: from the country."
    )
    quiet_hours: QuietHours | None = None
    opted_out: list[SingleLine] = Field(default_factory=list)
    consents: list[SingleLine] = Field(default_factory=list)


class PreferencesOut(PreferencesIn):
    effective_timezone: str
    categories: list[CategoryOut]


async def _own_member(principal: Principal, service: Notifications) -> UUID:
    if principal.member_id is None:
        raise Problem(404, "Recipient not found", detail="Your account is not linked to a member.")
    async with service.sessions() as session:
        exists = (
            await session.execute(
                select(recipients.c.member_id).where(recipients.c.member_id == principal.member_id)
            )
        ).first()
    if exists is None:
        raise Problem(404, "Recipient not found")
    return principal.member_id


def _preferences_out(prefs: Preferences, country: str | None) -> PreferencesOut:
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


@me_router.get("/preferences", response_model=PreferencesOut)
async def get_preferences(
    service: ServiceDep, identity: IdentityDep, principal: CurrentPrincipal
) -> PreferencesOut:
    identity.policy.decide(principal, "notification_preferences", "read")
    member_id = await _own_member(principal, service)
    async with service.sessions() as session:
        target = await load_target(session, member_id)
    assert target is not None
    return _preferences_out(target.prefs, target.country)


@me_router.put(
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
        raise _invalid("The preferences are not valid", errors)
    values = {
        "channels": list(body.channels),
        "timezone": body.timezone,
        "quiet_start": body.quiet_hours.start if body.quiet_hours else None,
        "quiet_end": body.quiet_hours.end if body.quiet_hours else None,
        "opted_out": sorted(set(body.opted_out)),
        "consents": sorted(set(body.consents)),
    }
    async with service.sessions() as session, session.begin():
        await session.execute(
            insert(preferences)
            .values(member_id=member_id, **values)
            .on_conflict_do_update(
                index_elements=[preferences.c.member_id], set_={**values, "updated_at": func.now()}
            )
        )
        target = await load_target(session, member_id)
    assert target is not None
    return _preferences_out(target.prefs, target.country)


class InboxMessageOut(BaseModel):
    id: UUID
    category: str
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None


class InboxPage(BaseModel):
    items: list[InboxMessageOut]
    unread: int
    next_before: datetime | None


@me_router.get("/inbox", response_model=InboxPage)
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
    scope = decision.where({"member_id": inbox_messages.c.member_id})
    query = (
        select(inbox_messages)
        .where(scope)
        .order_by(inbox_messages.c.created_at.desc(), inbox_messages.c.id.desc())
        .limit(limit + 1)
    )
    if unread:
        query = query.where(inbox_messages.c.read_at.is_(None))
    if before is not None:
        query = query.where(inbox_messages.c.created_at < before)
    async with service.sessions() as session, session.begin():
        rows = (await session.execute(query)).all()
        unread_count = (
            await session.execute(
                select(func.count()).where(scope, inbox_messages.c.read_at.is_(None))
            )
        ).scalar_one()
        others = sorted({r.member_id for r in rows[:limit]} - {principal.member_id}, key=str)
        await audit_trail(service.outbox).record(
            session,
            decision,
            AccessContext.of(request),
            [(member, INBOX_FIELDS) for member in others],
        )
    items = [InboxMessageOut.model_validate(r, from_attributes=True) for r in rows[:limit]]
    return InboxPage(
        items=items,
        unread=unread_count,
        next_before=items[-1].created_at if len(rows) > limit else None,
    )


@me_router.post("/inbox/{message_id}/read", response_model=InboxMessageOut)
async def mark_read(
    message_id: UUID, service: ServiceDep, identity: IdentityDep, principal: CurrentPrincipal
) -> InboxMessageOut:
    decision = identity.policy.decide(principal, "inbox_message", "mark_read")
    scope = decision.where({"member_id": inbox_messages.c.member_id})
    async with service.sessions() as session, session.begin():
        row = (
            await session.execute(
                update(inbox_messages)
                .where(inbox_messages.c.id == message_id, scope)
                .values(read_at=func.coalesce(inbox_messages.c.read_at, func.now()))
                .returning(inbox_messages)
            )
        ).first()
    if row is None:
        raise Problem(404, "Message not found")
    return InboxMessageOut.model_validate(row, from_attributes=True)


# -- resend ------------------------------------------------------------------------

deliveries_router = APIRouter(tags=["deliveries"], responses=RESPONSES)


class ResendOut(BaseModel):
    id: UUID
    previous_id: UUID
    channel: str
    status: str


@deliveries_router.post(
    "/deliveries/{delivery_id}/resend",
    response_model=ResendOut,
    status_code=201,
    responses={404: {"description": "No such delivery within your scope"}},
)
async def resend(
    delivery_id: UUID,
    service: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ResendOut:
    """A new attempt of a delivery: the same message, to the person's current address on
    the same channel, as a new delivery (new Message-ID). With ``Idempotency-Key`` a
    repeated request creates nothing more."""
    decision = identity.policy.decide(principal, "delivery", "resend")
    scope = decision.where(
        {
            "recipient_id": recipients.c.member_id,
            "embassy_id": identity.jurisdictions.sql_embassy_of(recipients.c.country_of_residence),
        }
    )
    cause = (
        uuid.uuid5(RESEND_NAMESPACE, f"{delivery_id}:{idempotency_key}")
        if idempotency_key
        else uuid_compat.uuid7()
    )
    async with service.sessions() as session, session.begin():
        original = (
            await session.execute(
                select(deliveries)
                .join(recipients, recipients.c.member_id == deliveries.c.recipient_id)
                .where(deliveries.c.id == delivery_id, scope)
            )
        ).first()
        if original is None:
            raise Problem(404, "Delivery not found")
        if original.reason == "verification":
            raise Problem(
                409,
                "A verification is not resent",
                detail="Its secret is gone: the person asks for a new one (/me/contacts).",
            )
        target = await load_target(session, original.recipient_id)
        assert target is not None
        address = target.address(original.channel)
        if original.channel != "inbox" and not address:
            raise Problem(409, "No address", detail=f"The person has no {original.channel} now.")
        row = {
            "id": uuid_compat.uuid7(),
            "cause_event_id": cause,
            "recipient_id": original.recipient_id,
            "channel": original.channel,
            "template": original.template,
            "template_version": original.template_version,
            "category": original.category,
            "mandatory": original.mandatory,
            "language": original.language,
            "address": address,
            "subject": original.subject,
            "body": original.body,
            "sms_text": original.sms_text,
            "traceparent": None,
            "campaign_id": original.campaign_id,
            "previous_id": original.id,
            "reason": "resend",
        }
        await enqueue(session, service.outbox, [row])
        created = (
            await session.execute(
                select(deliveries).where(
                    deliveries.c.cause_event_id == cause,
                    deliveries.c.recipient_id == original.recipient_id,
                    deliveries.c.channel == original.channel,
                )
            )
        ).one()
    return ResendOut(
        id=created.id, previous_id=original.id, channel=created.channel, status=created.status
    )


# -- campaigns ---------------------------------------------------------------------

campaigns_router = APIRouter(prefix="/campaigns", tags=["campaigns"], responses=RESPONSES)


class AudienceIn(BaseModel):
    template: SingleLine
    segment: Segment = Field(default_factory=Segment)


class AudienceOut(BaseModel):
    audience: int
    category: str


class CampaignIn(AudienceIn):
    name: SingleLine = Field(min_length=1, max_length=200)
    variables: Variables = Field(
        default_factory=dict, description="Values of the template's variables (not the person's)."
    )
    rate_per_second: int | None = Field(default=None, ge=1, le=100_000)
    send_at: datetime | None = Field(default=None, description="Schedules it; else a draft.")


class ScheduleIn(BaseModel):
    send_at: datetime = Field(description="When to start sending (timezone-aware).")


class CampaignOut(BaseModel):
    id: UUID
    name: str
    template: str
    variables: dict[str, Any]
    segment: dict[str, Any]
    rate_per_second: int
    status: str
    send_at: datetime | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    audience: int | None
    progress: dict[str, Any] | None = None


class CampaignPage(BaseModel):
    items: list[CampaignOut]
    next_before: datetime | None


async def _template_category(service: Notifications, key: str) -> tuple[str, set[str]]:
    async with service.sessions() as session:
        versions = await latest_active_all(session, key)
    if not versions:
        raise _invalid("Unknown template", [{"field": "template", "message": f"no {key!r}"}])
    needed: set[str] = set()
    for version in versions.values():
        needed |= set(version.variables)
    return next(iter(versions.values())).category, needed - PERSON_VARIABLES - BUILTIN_VARIABLES


@campaigns_router.post("/audience", response_model=AudienceOut)
async def preview_audience(
    body: AudienceIn, service: ServiceDep, identity: IdentityDep, principal: CurrentPrincipal
) -> AudienceOut:
    """How many people the segment reaches now (opt-outs and missing consents removed)."""
    identity.policy.decide(principal, "campaign", "create")
    category_name, _ = await _template_category(service, body.template)
    async with service.sessions() as session:
        size = await audience_size(session, body.segment, category_name)
    return AudienceOut(audience=size, category=category_name)


async def _campaign_out(service: Notifications, row: Any, *, with_progress: bool) -> CampaignOut:
    out = CampaignOut.model_validate(row, from_attributes=True)
    if with_progress:
        async with service.sessions() as session:
            out.progress = await progress(session, row.id)
    return out


@campaigns_router.post("", response_model=CampaignOut, status_code=201)
async def create_campaign(
    body: CampaignIn,
    service: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> CampaignOut:
    identity.policy.decide(principal, "campaign", "create")
    _category, needed = await _template_category(service, body.template)
    missing = sorted(needed - set(body.variables))
    if missing:
        raise _invalid(
            "Missing template variables",
            [{"field": "variables", "message": f"missing: {', '.join(missing)}"}],
        )
    if body.send_at is not None and body.send_at.tzinfo is None:
        raise _invalid("send_at needs a time zone", [{"field": "send_at", "message": "naive"}])
    values = {
        "id": uuid_compat.uuid7(),
        "name": body.name,
        "template": body.template,
        "variables": body.variables,
        "segment": body.segment.model_dump(),
        "rate_per_second": body.rate_per_second or service.settings.campaign_rate_per_second,
        "status": "scheduled" if body.send_at else "draft",
        "send_at": body.send_at,
        "created_by": principal.subject,
        "idempotency_key": f"{principal.subject}:{idempotency_key}" if idempotency_key else None,
    }
    async with service.sessions() as session:
        try:
            async with session.begin():
                await session.execute(campaigns.insert().values(**values))
        except IntegrityError:
            pass  # the same Idempotency-Key: answer with the campaign it created
        condition = (
            campaigns.c.idempotency_key == values["idempotency_key"]
            if idempotency_key
            else campaigns.c.id == values["id"]
        )
        row = (await session.execute(select(campaigns).where(condition))).one()
    return await _campaign_out(service, row, with_progress=False)


@campaigns_router.get("", response_model=CampaignPage)
async def list_campaigns(
    service: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: datetime | None = None,
) -> CampaignPage:
    identity.policy.decide(principal, "campaign", "read")
    query = select(campaigns).order_by(campaigns.c.created_at.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(campaigns.c.created_at < before)
    async with service.sessions() as session:
        rows = (await session.execute(query)).all()
    items = [CampaignOut.model_validate(r, from_attributes=True) for r in rows[:limit]]
    return CampaignPage(
        items=items, next_before=items[-1].created_at if len(rows) > limit else None
    )


@campaigns_router.get("/{campaign_id}", response_model=CampaignOut)
async def get_campaign(
    campaign_id: UUID, service: ServiceDep, identity: IdentityDep, principal: CurrentPrincipal
) -> CampaignOut:
    """The campaign with its progress: audience states and delivery outcomes per channel."""
    identity.policy.decide(principal, "campaign", "read")
    async with service.sessions() as session:
        row = (
            await session.execute(select(campaigns).where(campaigns.c.id == campaign_id))
        ).first()
    if row is None:
        raise Problem(404, "Campaign not found")
    return await _campaign_out(service, row, with_progress=True)


@campaigns_router.post("/{campaign_id}/schedule", response_model=CampaignOut)
async def schedule_campaign(
    campaign_id: UUID,
    body: ScheduleIn,
    service: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
) -> CampaignOut:
    identity.policy.decide(principal, "campaign", "schedule")
    if body.send_at.tzinfo is None:
        raise _invalid("send_at needs a time zone", [{"field": "send_at", "message": "naive"}])
    async with service.sessions() as session, session.begin():
        row = (
            await session.execute(
                update(campaigns)
                .where(
                    campaigns.c.id == campaign_id, campaigns.c.status.in_(["draft", "scheduled"])
                )
                .values(status="scheduled", send_at=body.send_at)
                .returning(campaigns)
            )
        ).first()
        if row is None:
            exists = (
                await session.execute(
                    select(campaigns.c.status).where(campaigns.c.id == campaign_id)
                )
            ).first()
            if exists is None:
                raise Problem(404, "Campaign not found")
            raise Problem(409, "Campaign already started", detail=f"It is {exists.status}.")
    return await _campaign_out(service, row, with_progress=False)


@campaigns_router.post("/{campaign_id}/cancel", response_model=CampaignOut)
async def cancel_campaign(
    campaign_id: UUID, service: ServiceDep, identity: IdentityDep, principal: CurrentPrincipal
) -> CampaignOut:
    """Stop it: nobody not yet handed over gets it; queued, unsent messages are cancelled."""
    identity.policy.decide(principal, "campaign", "cancel")
    async with service.sessions() as session, session.begin():
        row = (
            await session.execute(
                update(campaigns)
                .where(
                    campaigns.c.id == campaign_id,
                    campaigns.c.status.in_(["draft", "scheduled", "sending"]),
                )
                .values(status="cancelled", finished_at=datetime.now(UTC))
                .returning(campaigns)
            )
        ).first()
        if row is None:
            raise Problem(404, "Campaign not found", detail="Or it is already finished.")
        await session.execute(
            update(deliveries)
            .where(and_(deliveries.c.campaign_id == campaign_id, deliveries.c.status == "pending"))
            .values(status="cancelled", last_error="campaign cancelled")
        )
    return await _campaign_out(service, row, with_progress=True)


# -- contact verification ----------------------------------------------------------

contacts_router = APIRouter(tags=["contacts"])


class LinkConfirmIn(BaseModel):
    token: SingleLine = Field(min_length=16, max_length=200)


class CodeConfirmIn(BaseModel):
    code: SingleLine = Field(pattern=r"^[0-9]{6}$")


class VerifiedOut(BaseModel):
    kind: Literal["email", "phone"]
    verified_at: datetime


class ContactOut(BaseModel):
    address: str | None
    verified: bool


class ContactsOut(BaseModel):
    email: ContactOut
    phone: ContactOut


class VerificationSentOut(BaseModel):
    kind: Literal["email", "phone"]
    delivery_id: UUID


def _verification_problem(error: verification.VerificationError) -> Problem:
    return Problem(error.status, error.title, detail=error.detail)


async def _confirm_link(token: str, service: Notifications) -> VerifiedOut:
    try:
        async with service.sessions() as session, session.begin():
            _member, at = await verification.confirm_link(
                session, service.outbox, token, available=service.settings.available_channels
            )
    except verification.VerificationError as error:
        raise _verification_problem(error) from None
    return VerifiedOut(kind="email", verified_at=at)


@contacts_router.post(
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


@contacts_router.get(
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


async def _own_contacts(
    session: AsyncSession, principal: Principal
) -> tuple[UUID, verification.Contacts]:
    """The caller's member id and contacts, read in the caller's transaction (404 as
    ``_own_member`` when the account has no recipient)."""
    if principal.member_id is None:
        raise Problem(404, "Recipient not found", detail="Your account is not linked to a member.")
    found = await verification.contacts_of(session, principal.member_id)
    if found is None:
        raise Problem(404, "Recipient not found")
    return principal.member_id, found


@me_router.get("/contacts", response_model=ContactsOut)
async def get_contacts(
    service: ServiceDep, identity: IdentityDep, principal: CurrentPrincipal
) -> ContactsOut:
    """Your email and phone as notifications knows them, and whether each is verified."""
    identity.policy.decide(principal, "contact_verification", "read")
    async with service.sessions() as session:
        _member_id, found = await _own_contacts(session, principal)
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
    member_id = await _own_member(principal, service)
    refused: verification.VerificationError | None = None
    async with service.sessions() as session, session.begin():
        try:
            at = await verification.confirm_code(
                session,
                service.outbox,
                service.settings,
                member_id,
                body.code,
                available=service.settings.available_channels,
            )
        except verification.VerificationError as error:
            refused = error  # the attempt is counted: commit, then refuse
    if refused is not None:
        raise _verification_problem(refused)
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
    async with service.sessions() as session, session.begin():
        member_id, found = await _own_contacts(session, principal)
        if kind == "phone" and "sms" not in service.settings.available_channels:
            raise Problem(409, "No SMS channel", detail="Phone numbers cannot be verified here.")
        if not found.value(kind):
            raise Problem(409, f"No {kind} to verify")
        if found.verified(kind):
            raise Problem(409, f"Your {kind} is already verified")
        try:
            delivery_id = await verification.send(
                session, service.outbox, service.settings, member_id=member_id, kind=kind
            )
        except verification.RateLimited as limited:
            raise Problem(
                429,
                "Too many verification messages",
                detail=f"Try again in {limited.retry_after} seconds.",
                headers={"Retry-After": str(limited.retry_after)},
            ) from None
    assert delivery_id is not None
    return VerificationSentOut(kind=kind, delivery_id=delivery_id)


ROUTERS = [templates_router, me_router, deliveries_router, campaigns_router, contacts_router]
__all__ = ["CHANNELS", "DEFAULT_CHANNELS", "ROUTERS"]
