"""Template routes (``/templates``): the administrators' (policy ``notification_template``)."""

from __future__ import annotations

from typing import Annotated, Any

import uuid_utils.compat as uuid_compat
from fastapi import APIRouter, Path, Query, Request

from diaspora_identity.audit import AccessContext
from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_service.problems import Problem
from notifications.audit import template_record_id
from notifications.deps import IdentityDep, ServiceDep
from notifications.problems import invalid
from notifications.resources import Notifications
from notifications.templates import service as templates_service
from notifications.templates.domain import TemplateInvalid, TemplateVersion, check, render_version
from notifications.templates.schemas import (
    PreviewIn,
    PreviewOut,
    TemplateIn,
    TemplateOut,
    TemplatePage,
    TemplateSummary,
)

router = APIRouter(prefix="/templates", tags=["templates"], responses=AUTH_RESPONSES)


def _check_language(language: str) -> None:
    if len(language) != 2 or not language.isalpha() or not language.islower():
        raise invalid(
            "Unknown language", [{"part": "language", "message": "two lowercase letters"}]
        )


async def _version(service: Notifications, key: str, language: str, version: int | None) -> Any:
    row = await templates_service.find_version(service, key, language, version)
    if row is None:
        raise Problem(404, "Template not found")
    return row


@router.get("", response_model=TemplatePage)
async def list_templates(
    service: ServiceDep,
    identity: IdentityDep,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> TemplatePage:
    """The latest version of every template, per key and language."""
    identity.policy.decide(principal, "notification_template", "list")
    rows = await templates_service.latest_page(service, offset=offset, limit=limit)
    items = [TemplateSummary.model_validate(r, from_attributes=True) for r in rows[:limit]]
    return TemplatePage(items=items, next_offset=offset + limit if len(rows) > limit else None)


@router.get("/{key}/{language}", response_model=TemplateOut)
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


@router.get("/{key}/{language}/versions", response_model=list[TemplateSummary])
async def list_versions(
    key: str, language: str, service: ServiceDep, identity: IdentityDep, principal: CurrentPrincipal
) -> list[TemplateSummary]:
    identity.policy.decide(principal, "notification_template", "read")
    rows = await templates_service.versions_of(service, key, language)
    return [TemplateSummary.model_validate(r, from_attributes=True) for r in rows]


@router.put(
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
    try:
        row = await templates_service.save(
            service,
            decision,
            AccessContext.of(request),
            key=key,
            language=language,
            parts={"subject": body.subject, "body": body.body, "sms": body.sms},
            category_name=body.category,
            variables=body.variables,
            active=body.active,
            author=principal.subject,
        )
    except templates_service.NoDefaults:
        raise invalid(
            "A new template needs its category and variables",
            [{"part": "category", "message": "give category and variables"}],
        ) from None
    except TemplateInvalid as error:
        raise invalid("The template is not valid", error.errors) from None
    return TemplateOut.model_validate(row, from_attributes=True)


@router.post(
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
        previous = await templates_service.find_version(service, key, language, None)
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
        raise invalid(
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
        raise invalid("The template is not valid", error.errors) from None
    values = {**version.variables, **(body.variables or {})}
    try:
        rendered = render_version(version, values, locale=language)
    except Exception as error:
        raise invalid(
            "The template does not render", [{"part": "template", "message": str(error)}]
        ) from None
    await templates_service.audit_preview(service, decision, AccessContext.of(request), record_id)
    return PreviewOut(
        key=key,
        language=language,
        version=version.version or None,
        subject=rendered.subject,
        body=rendered.body,
        sms=rendered.sms,
    )
