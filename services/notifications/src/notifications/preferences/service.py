"""Preferences and inbox use cases: one transaction each."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_identity.audit import AccessContext
from diaspora_identity.policy import Decision
from notifications.audit import INBOX_FIELDS, audit_trail
from notifications.preferences.domain import DEFAULT_CHANNELS, Preferences
from notifications.preferences.tables import inbox_messages, preferences
from notifications.resources import Notifications
from notifications.tables import recipients

_PREFERENCES_OF = select(
    recipients.c.country_of_residence,
    preferences.c.channels,
    preferences.c.timezone,
    preferences.c.quiet_start,
    preferences.c.quiet_end,
    preferences.c.opted_out,
    preferences.c.consents,
).select_from(recipients.outerjoin(preferences, preferences.c.member_id == recipients.c.member_id))

NEWSLETTER = "newsletter"  # the category the registry's newsletters consent decides


async def recipient_exists(service: Notifications, member_id: UUID) -> bool:
    async with service.sessions() as session:
        found = (
            await session.execute(
                select(recipients.c.member_id).where(recipients.c.member_id == member_id)
            )
        ).first()
    return found is not None


async def _preferences_of(
    session: AsyncSession, member_id: UUID
) -> tuple[Preferences, str | None] | None:
    row = (
        await session.execute(_PREFERENCES_OF.where(recipients.c.member_id == member_id))
    ).first()
    return (Preferences.of(row), row.country_of_residence) if row else None


async def preferences_of(
    service: Notifications, member_id: UUID
) -> tuple[Preferences, str | None] | None:
    """The person's preferences (the defaults when they have none) and their country."""
    async with service.sessions() as session:
        return await _preferences_of(session, member_id)


async def replace_preferences(
    service: Notifications, member_id: UUID, values: dict[str, Any]
) -> tuple[Preferences, str | None] | None:
    async with service.sessions() as session, session.begin():
        await session.execute(
            insert(preferences)
            .values(member_id=member_id, **values)
            .on_conflict_do_update(
                index_elements=[preferences.c.member_id], set_={**values, "updated_at": func.now()}
            )
        )
        return await _preferences_of(session, member_id)


async def list_inbox(
    service: Notifications,
    decision: Decision,
    access: AccessContext,
    *,
    reader: UUID | None,
    unread: bool,
    limit: int,
    before: datetime | None,
) -> tuple[list[Any], int]:
    """Up to ``limit + 1`` messages in scope, newest first, and the unread count. Each
    person other than the reader whose messages are read gets an audit entry."""
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
        rows = list((await session.execute(query)).all())
        unread_count = (
            await session.execute(
                select(func.count()).where(scope, inbox_messages.c.read_at.is_(None))
            )
        ).scalar_one()
        others = sorted({r.member_id for r in rows[:limit]} - {reader}, key=str)
        await audit_trail(service.outbox).record(
            session, decision, access, [(member, INBOX_FIELDS) for member in others]
        )
    return rows, int(unread_count)


async def mark_read(service: Notifications, decision: Decision, message_id: UUID) -> Any:
    """The message marked read (once: the first time stays), or None if out of scope."""
    scope = decision.where({"member_id": inbox_messages.c.member_id})
    async with service.sessions() as session, session.begin():
        return (
            await session.execute(
                update(inbox_messages)
                .where(inbox_messages.c.id == message_id, scope)
                .values(read_at=func.coalesce(inbox_messages.c.read_at, func.now()))
                .returning(inbox_messages)
            )
        ).first()


async def erase_member(session: AsyncSession, member_id: UUID) -> None:
    """Erasure step: the person's inbox and preferences go."""
    await session.execute(delete(inbox_messages).where(inbox_messages.c.member_id == member_id))
    await session.execute(delete(preferences).where(preferences.c.member_id == member_id))


async def merge_member(session: AsyncSession, absorbed_id: UUID, survivor_id: UUID) -> None:
    """Merge step: the absorbed record's preferences and inbox go to the survivor.
    Preferences: the most recently changed of the two rows wins; inbox messages move."""
    prefs = (
        await session.execute(select(preferences).where(preferences.c.member_id == absorbed_id))
    ).first()
    if prefs is not None:
        values = {
            c: getattr(prefs, c)
            for c in (
                "channels",
                "timezone",
                "quiet_start",
                "quiet_end",
                "opted_out",
                "consents",
                "updated_at",
            )
        }
        statement = insert(preferences).values(member_id=survivor_id, **values)
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[preferences.c.member_id],
                set_={c: statement.excluded[c] for c in values},
                where=preferences.c.updated_at < statement.excluded.updated_at,
            )
        )
    await session.execute(
        update(inbox_messages)
        .where(inbox_messages.c.member_id == absorbed_id)
        .values(member_id=survivor_id)
    )


async def apply_newsletter_decision(
    session: AsyncSession, member_id: UUID, *, granted: bool, at: datetime
) -> None:
    """The registry's ``newsletters`` consent decision, newly taken (contacts applies each
    decision once), carried over to ``consents`` (category ``newsletter``): a withdrawal
    always removes it; a grant adds it unless the person changed their preferences after
    deciding (their later choice here stands)."""
    without = func.array_remove(preferences.c.consents, literal(NEWSLETTER))
    if not granted:
        await session.execute(
            update(preferences).where(preferences.c.member_id == member_id).values(consents=without)
        )
        return
    statement = insert(preferences).values(
        member_id=member_id,
        channels=list(DEFAULT_CHANNELS),
        consents=[NEWSLETTER],
        updated_at=at,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[preferences.c.member_id],
            set_={"consents": func.array_append(without, literal(NEWSLETTER))},
            where=preferences.c.updated_at <= at,
        )
    )
