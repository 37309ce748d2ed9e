"""Reads of members: every read goes through :func:`find_members`.

The caller's policy decision restricts the rows in SQL, projects the fields each row
may show, and the audit trail records, in the same transaction, every record that
someone other than the person received.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_identity.audit import AccessContext, AuditTrail
from diaspora_identity.policy import Decision
from registry.crypto import DocumentCipher
from registry.members.access import ACCESS_LOG_SCOPE_COLUMNS, SCOPE_COLUMNS
from registry.members.errors import MemberNotFound
from registry.members.records import MEMBER_FIELDS, consents_of, documents_of, view_of
from registry.members.tables import member_changes, members


@dataclass(frozen=True)
class MemberQuery:
    """Filters of a member read: one id, or a list / search / export with filters."""

    member_id: UUID | None = None
    # A given set of members (search: the page of ids the search read model found).
    member_ids: Sequence[UUID] | None = None
    country: str | None = None
    embassy: str | None = None
    text: str | None = None
    offset: int = 0
    limit: int | None = 50


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _apply(query: Select[Any], q: MemberQuery) -> Select[Any]:
    if q.member_id is not None:
        query = query.where(members.c.id == q.member_id)
    if q.member_ids is not None:
        query = query.where(members.c.id.in_(q.member_ids))
    if q.country is not None:
        query = query.where(members.c.country_of_residence == q.country)
    if q.embassy is not None:
        query = query.where(members.c.embassy_id == q.embassy)
    if q.text:
        # Every word must appear in the name, accents and case ignored.
        name = func.unaccent(members.c.given_name + " " + members.c.family_name)
        words = [w for w in q.text.split() if w]
        query = query.where(
            and_(*(name.ilike(func.unaccent(f"%{_escape_like(w)}%"), escape="\\") for w in words))
        )
    return query


async def find_members(
    *,
    sessions: async_sessionmaker[AsyncSession],
    audit: AuditTrail,
    decision: Decision,
    context: AccessContext,
    query: MemberQuery,
    documents_decision: Decision | None = None,
    cipher: DocumentCipher | None = None,
) -> list[dict[str, Any]]:
    """The members the caller may see matching ``query``, each with the fields they may see.

    The one read path of get, list, search and export: scope in SQL, field rules
    per row, and an audit entry per record received by anyone but the person.
    Document numbers are decrypted only for records ``documents_decision`` (the
    policy's ``member_document`` read) reaches: by default, the person's own.
    """
    statement = _apply(select(members).where(decision.where(SCOPE_COLUMNS)), query).order_by(
        members.c.id
    )
    if query.offset:
        statement = statement.offset(query.offset)
    if query.limit is not None:
        statement = statement.limit(query.limit)
    async with sessions() as session, session.begin():
        rows: Sequence[Mapping[Any, Any]] = (await session.execute(statement)).mappings().all()
        ids = [row["id"] for row in rows]
        documents = await documents_of(session, ids)
        consents = await consents_of(session, ids)
        views = []
        for row in rows:
            numbers = (
                cipher is not None
                and documents_decision is not None
                and documents_decision.permits(row)
            )
            full = view_of(
                row, documents[row["id"]], consents[row["id"]], cipher=cipher, with_numbers=numbers
            )
            # The scope attributes (owner_subject) decide which field rules reach the row.
            views.append(decision.project({**row, **full}, MEMBER_FIELDS))
        accesses = [
            (row["id"], list(view))
            for row, view in zip(rows, views, strict=True)
            if view and not decision.is_own(row)
        ]
        await audit.record(session, decision, context, accesses)
    return views


HISTORY_FIELDS = (
    "changed_at",
    "action",
    "actor_role",
    "actor_subject",
    "fields",
    "old_values",
    "new_values",
    "version",
)


async def member_history(
    *,
    sessions: async_sessionmaker[AsyncSession],
    audit: AuditTrail,
    decision: Decision,
    context: AccessContext,
    member_id: UUID,
    before_id: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The member's history, newest first; staff reads are audited."""
    async with sessions() as session, session.begin():
        row = (
            await session.execute(
                select(members.c.id, members.c.owner_subject, members.c.embassy_id).where(
                    members.c.id == member_id, decision.where(SCOPE_COLUMNS)
                )
            )
        ).first()
        if row is None:
            raise MemberNotFound(str(member_id))
        statement = (
            select(member_changes.c.id, *(member_changes.c[f] for f in HISTORY_FIELDS))
            .where(member_changes.c.member_id == member_id)
            .order_by(member_changes.c.id.desc())
            .limit(limit)
        )
        if before_id is not None:
            statement = statement.where(member_changes.c.id < before_id)
        entries = [dict(r) for r in (await session.execute(statement)).mappings().all()]
        if not decision.is_own(dict(row._mapping)):
            await audit.record(session, decision, context, [(member_id, ["history"])])
    return entries


async def member_in_scope(
    *, sessions: async_sessionmaker[AsyncSession], decision: Decision, member_id: UUID
) -> bool:
    async with sessions() as session:
        found = (
            await session.execute(
                select(members.c.id).where(
                    members.c.id == member_id, decision.where(ACCESS_LOG_SCOPE_COLUMNS)
                )
            )
        ).first()
    return found is not None


ACCESS_LOG_FIELDS = (
    "occurred_at",
    "action",
    "actor_roles",
    "actor_subject",
    "actor_is_service",
    "fields",
)
