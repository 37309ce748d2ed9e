"""The applicants read model: snapshots applied if newer, erasure and merge.

Every member event but erasure and merge carries the whole profile as it stands after
it (``registry.member.registered``, ``.updated``, ``.confirmed``, ``.identity-verified``,
``.marked-stale``): each is applied to ``applicants`` only if it is at least as recent as
the snapshot kept (``source_time``) and never for a member erased or merged away
(``removed_applicants``). Early registrations without a profile give the flat fields;
their embassy follows from the country of residence (the jurisdictions table).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, delete, exists, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from consular.members.domain import Applicant
from consular.members.tables import applicants, removed_applicants
from diaspora_events.contracts.registry import MemberProfile

_COLUMNS = (
    "member_id",
    "given_name",
    "family_name",
    "email",
    "preferred_language",
    "country_of_residence",
    "embassy_id",
    "identity_level",
    "identity_method",
    "identity_verified_at",
    "identity_embassy_id",
    "identity_expires_on",
    "source_time",
    "date_of_birth",
)


def _upsert() -> Any:
    params = [bindparam(c, type_=applicants.c[c].type) for c in _COLUMNS]
    removed = exists().where(removed_applicants.c.member_id == params[0])
    statement = insert(applicants).from_select(list(_COLUMNS), select(*params).where(~removed))
    return statement.on_conflict_do_update(
        index_elements=[applicants.c.member_id],
        set_={
            **{c: statement.excluded[c] for c in _COLUMNS if c != "member_id"},
            "updated_at": statement.excluded.source_time,
        },
        where=applicants.c.source_time <= statement.excluded.source_time,
    ).returning(applicants.c.member_id)


UPSERT = _upsert()


def row_of(member_id: UUID, profile: MemberProfile, at: datetime) -> dict[str, Any]:
    identity = profile.identity
    return {
        "member_id": member_id,
        "given_name": profile.given_name,
        "family_name": profile.family_name,
        "email": profile.email,
        "preferred_language": profile.preferred_language,
        "country_of_residence": profile.country_of_residence.upper(),
        "embassy_id": profile.embassy_id,
        "identity_level": identity.level if identity else None,
        "identity_method": identity.method if identity else None,
        "identity_verified_at": identity.verified_at if identity else None,
        "identity_embassy_id": identity.embassy_id if identity else None,
        "identity_expires_on": identity.expires_on if identity else None,
        "source_time": at,
        "date_of_birth": profile.date_of_birth,
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
        insert(removed_applicants)
        .values(member_id=member_id, reason=reason, removed_at=at, survivor_id=survivor_id)
        .on_conflict_do_nothing()
    )


async def forget(session: AsyncSession, member_id: UUID) -> None:
    """The read model's row of the person goes (erasure, or absorbed by a merge)."""
    await session.execute(delete(applicants).where(applicants.c.member_id == member_id))


async def applicant(session: AsyncSession, member_id: UUID) -> Applicant | None:
    row = (
        (await session.execute(select(applicants).where(applicants.c.member_id == member_id)))
        .mappings()
        .first()
    )
    if row is None:
        return None
    return Applicant(
        member_id=row["member_id"],
        given_name=row["given_name"],
        family_name=row["family_name"],
        email=row["email"],
        preferred_language=row["preferred_language"],
        country_of_residence=row["country_of_residence"],
        embassy_id=row["embassy_id"],
        identity_level=row["identity_level"],
        identity_verified_at=row["identity_verified_at"],
        identity_expires_on=row["identity_expires_on"],
    )
