"""Template versions in the database: the latest active one, saving a new one, seeding.

The rules (sandbox, declared variables, rendering) are ``domain.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import uuid_utils.compat as uuid_compat
from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_identity.audit import AccessContext
from diaspora_identity.policy import Decision
from notifications.audit import TEMPLATE_FIELDS, audit_trail
from notifications.resources import Notifications
from notifications.templates.domain import (
    EVENT_VARIABLES,
    TemplateInvalid,
    TemplateNotFound,
    TemplateVersion,
    check,
    languages_for,
    seed_rows,
)
from notifications.templates.tables import templates

# Built once (on every event that tells someone something).
_LATEST_ACTIVE = (
    select(templates)
    .where(
        templates.c.key == bindparam("key"),
        templates.c.language == bindparam("language"),
        templates.c.active,
    )
    .order_by(templates.c.version.desc())
    .limit(1)
)


async def latest_active(session: AsyncSession, key: str, language: str) -> TemplateVersion | None:
    row = (await session.execute(_LATEST_ACTIVE, {"key": key, "language": language})).first()
    return TemplateVersion.of(row) if row else None


async def resolve(session: AsyncSession, key: str, language: str) -> TemplateVersion:
    """The latest active version in the person's language or the first fallback that has one."""
    for candidate in languages_for(language):
        found = await latest_active(session, key, candidate)
        if found is not None:
            return found
    raise TemplateNotFound(f"no active template {key!r} in any language")


async def latest_active_all(session: AsyncSession, key: str) -> dict[str, TemplateVersion]:
    """Per language, the latest active version of ``key`` (campaigns render many people)."""
    latest = (
        select(templates.c.language, func.max(templates.c.version).label("version"))
        .where(templates.c.key == key, templates.c.active)
        .group_by(templates.c.language)
        .subquery()
    )
    rows = await session.execute(
        select(templates).join(
            latest,
            and_(
                templates.c.language == latest.c.language,
                templates.c.version == latest.c.version,
                templates.c.key == key,
            ),
        )
    )
    return {r.language: TemplateVersion.of(r) for r in rows}


async def save_version(
    session: AsyncSession,
    *,
    key: str,
    language: str,
    category_name: str,
    parts: Mapping[str, str],
    variables: Mapping[str, Any],
    active: bool,
    author: str,
) -> TemplateVersion:
    """Check and store a new version (the next number for this key and language)."""
    provided = EVENT_VARIABLES.get(key)
    if provided is not None and set(variables) - provided:
        extra = ", ".join(sorted(set(variables) - provided))
        raise TemplateInvalid(
            [
                {
                    "part": "variables",
                    "message": f"{key} is sent on an event that provides only "
                    f"{', '.join(sorted(provided))}; not {extra}",
                }
            ]
        )
    check(parts, variables, category_name=category_name)
    # Serialise saves of one (key, language): the version numbers stay dense.
    await session.execute(
        select(func.pg_advisory_xact_lock(func.hashtext(f"template:{key}:{language}")))
    )
    current = (
        await session.execute(
            select(func.coalesce(func.max(templates.c.version), 0)).where(
                templates.c.key == key, templates.c.language == language
            )
        )
    ).scalar_one()
    row = (
        await session.execute(
            templates.insert()
            .values(
                id=uuid_compat.uuid7(),
                key=key,
                language=language,
                version=int(current) + 1,
                category=category_name,
                subject=parts["subject"],
                body=parts["body"],
                sms=parts["sms"],
                variables=dict(variables),
                active=active,
                created_by=author,
            )
            .returning(templates)
        )
    ).one()
    return TemplateVersion.of(row)


async def seed_missing(session: AsyncSession) -> int:
    """Add shipped templates that have no version yet (a new file in a new release).

    Cheap when nothing is missing (the usual start): only the files are read.
    """
    existing = frozenset(
        (r.key, r.language)
        for r in await session.execute(select(templates.c.key, templates.c.language).distinct())
    )
    missing = seed_rows(skip=existing)
    if missing:
        await session.execute(
            insert(templates)
            .values(missing)
            .on_conflict_do_nothing(constraint="templates_version_once")
        )
    return len(missing)


# -- the administrators' use cases (templates/http.py) -----------------------------


class NoDefaults(Exception):
    """A new template (no earlier version of its key) given no category or variables."""


async def latest_page(service: Notifications, *, offset: int, limit: int) -> list[Any]:
    """Up to ``limit + 1`` rows: the latest version of every template, per key and language."""
    latest = (
        select(templates)
        .ext(distinct_on(templates.c.key, templates.c.language))
        .order_by(templates.c.key, templates.c.language, templates.c.version.desc())
        .subquery()
    )
    async with service.sessions() as session:
        return list(
            (
                await session.execute(
                    select(latest)
                    .order_by(latest.c.key, latest.c.language)
                    .offset(offset)
                    .limit(limit + 1)
                )
            ).all()
        )


async def find_version(
    service: Notifications, key: str, language: str, version: int | None
) -> Any | None:
    """One saved version (default: the latest, active or not), or None."""
    query = select(templates).where(templates.c.key == key, templates.c.language == language)
    if version is not None:
        query = query.where(templates.c.version == version)
    async with service.sessions() as session:
        return (await session.execute(query.order_by(templates.c.version.desc()).limit(1))).first()


async def versions_of(service: Notifications, key: str, language: str) -> list[Any]:
    async with service.sessions() as session:
        return list(
            (
                await session.execute(
                    select(templates)
                    .where(templates.c.key == key, templates.c.language == language)
                    .order_by(templates.c.version.desc())
                )
            ).all()
        )


async def save(
    service: Notifications,
    decision: Decision,
    access: AccessContext,
    *,
    key: str,
    language: str,
    parts: Mapping[str, str],
    category_name: str | None,
    variables: Mapping[str, Any] | None,
    active: bool,
    author: str,
) -> Any:
    """Save a new version (category and variables default to the latest version of the
    key, in this language first) and audit it; the saved row. ``NoDefaults`` or
    ``TemplateInvalid`` when it cannot be saved."""
    async with service.sessions() as session, session.begin():
        previous = (
            await session.execute(
                select(templates)
                .where(templates.c.key == key)
                .order_by((templates.c.language == language).desc(), templates.c.version.desc())
                .limit(1)
            )
        ).first()
        category_name = category_name or (previous.category if previous else None)
        if variables is None and previous is not None:
            variables = dict(previous.variables)
        if category_name is None or variables is None:
            raise NoDefaults
        saved = await save_version(
            session,
            key=key,
            language=language,
            category_name=category_name,
            parts=parts,
            variables=variables,
            active=active,
            author=author,
        )
        row = (await session.execute(select(templates).where(templates.c.id == saved.id))).one()
        await audit_trail(service.outbox).record(
            session, decision, access, [(saved.id, TEMPLATE_FIELDS)]
        )
    return row


async def audit_preview(
    service: Notifications, decision: Decision, access: AccessContext, record_id: UUID
) -> None:
    async with service.sessions() as session, session.begin():
        await audit_trail(service.outbox).record(
            session, decision, access, [(record_id, TEMPLATE_FIELDS)]
        )
