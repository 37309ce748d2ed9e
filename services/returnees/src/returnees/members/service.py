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

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.contracts.registry import MemberProfile, MemberRegisteredV1
from diaspora_events.member_read_model import MemberReadModel
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


def early_row_of(event: MemberRegisteredV1) -> dict[str, Any]:
    """An early registration: the flat fields."""
    return {
        "member_id": event.member_id,
        "given_name": event.given_name,
        "family_name": event.family_name,
        "email": event.email,
        "phone": event.phone,
        "preferred_language": event.preferred_language,
        "country_of_residence": event.country_of_residence.upper(),
        "source_time": event.registered_at,
    }


READ_MODEL = MemberReadModel(
    table=people, removed=removed_people, columns=_COLUMNS, snapshot_row=row_of
)

apply = READ_MODEL.apply
apply_snapshot = READ_MODEL.apply_snapshot
record_removed = READ_MODEL.record_removed
forget = READ_MODEL.forget


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
