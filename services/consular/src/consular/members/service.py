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

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from consular.members.domain import Applicant
from consular.members.tables import applicants, removed_applicants
from diaspora_events.contracts.registry import MemberProfile, MemberRegisteredV1
from diaspora_events.member_read_model import MemberReadModel
from diaspora_identity.jurisdictions import Jurisdictions

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


def early_row_of(event: MemberRegisteredV1, places: Jurisdictions) -> dict[str, Any]:
    """An early registration: the flat fields; the embassy from the country."""
    country = event.country_of_residence.upper()
    return {
        "member_id": event.member_id,
        "given_name": event.given_name,
        "family_name": event.family_name,
        "email": event.email,
        "preferred_language": event.preferred_language,
        "country_of_residence": country,
        "embassy_id": places.embassy_for(country),
        "identity_level": None,
        "identity_method": None,
        "identity_verified_at": None,
        "identity_embassy_id": None,
        "identity_expires_on": None,
        "source_time": event.registered_at,
        "date_of_birth": event.date_of_birth,
    }


READ_MODEL = MemberReadModel(
    table=applicants, removed=removed_applicants, columns=_COLUMNS, snapshot_row=row_of
)

apply = READ_MODEL.apply
apply_snapshot = READ_MODEL.apply_snapshot
record_removed = READ_MODEL.record_removed
forget = READ_MODEL.forget


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
