"""The people read model: snapshots applied if newer, erasure and merge.

Every member event but erasure and merge carries the whole profile as it stands after
it (registered, updated, confirmed, identity-verified, marked-stale): each is applied to
``people`` only if it is at least as recent as the snapshot kept (``source_time``) and
never for a member erased or merged away (``removed_people``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, delete, exists, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.contracts.registry import MemberProfile
from returnees.members.domain import Person
from returnees.members.tables import people, removed_people

_COLUMNS = (
    "member_id",
    "given_name",
    "family_name",
    "email",
    "phone",
    "preferred_language",
    "country_of_residence",
    "source_time",
)


def _upsert() -> Any:
    params = [bindparam(c, type_=people.c[c].type) for c in _COLUMNS]
    removed = exists().where(removed_people.c.member_id == params[0])
    statement = insert(people).from_select(list(_COLUMNS), select(*params).where(~removed))
    return statement.on_conflict_do_update(
        index_elements=[people.c.member_id],
        set_={
            **{c: statement.excluded[c] for c in _COLUMNS if c != "member_id"},
            "updated_at": statement.excluded.source_time,
        },
        where=people.c.source_time <= statement.excluded.source_time,
    ).returning(people.c.member_id)


UPSERT = _upsert()


def row_of(member_id: UUID, profile: MemberProfile, at: datetime) -> dict[str, Any]:
    return {
        "member_id": member_id,
        "given_name": profile.given_name,
        "family_name": profile.family_name,
        "email": profile.email,
        "phone": profile.phone,
        "preferred_language": profile.preferred_language,
        "country_of_residence": profile.country_of_residence.upper(),
        "source_time": at,
    }


async def apply(session: AsyncSession, row: dict[str, Any]) -> bool:
    """Keep the snapshot unless a newer one is kept or the member was removed."""
    return (await session.execute(UPSERT, row)).first() is not None


async def apply_snapshot(
    session: AsyncSession, member_id: UUID, profile: MemberProfile, at: datetime
) -> bool:
    return await apply(session, row_of(member_id, profile, at))


async def record_removed(
    session: AsyncSession,
    member_id: UUID,
    *,
    reason: str,
    at: datetime,
    survivor_id: UUID | None = None,
) -> None:
    await session.execute(
        insert(removed_people)
        .values(member_id=member_id, reason=reason, removed_at=at, survivor_id=survivor_id)
        .on_conflict_do_nothing()
    )


async def forget(session: AsyncSession, member_id: UUID) -> None:
    """The read model's row of the person goes (erasure, or absorbed by a merge)."""
    await session.execute(delete(people).where(people.c.member_id == member_id))


async def person(session: AsyncSession, member_id: UUID) -> Person | None:
    row = (
        (await session.execute(select(people).where(people.c.member_id == member_id)))
        .mappings()
        .first()
    )
    if row is None:
        return None
    return Person(
        member_id=row["member_id"],
        given_name=row["given_name"],
        family_name=row["family_name"],
        email=row["email"],
        phone=row["phone"],
        preferred_language=row["preferred_language"],
        country_of_residence=row["country_of_residence"],
    )
