"""A member within the caller's reach: scope columns, the actor, the locked row, its version."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_identity.policy import Decision
from diaspora_identity.principal import Role
from registry.members.errors import MemberNotFound, VersionMismatch
from registry.members.records import MEMBER_FIELDS
from registry.members.tables import members

# The policy's scope attributes, as columns of the members table.
SCOPE_COLUMNS = {
    "id": members.c.id,
    "owner_subject": members.c.owner_subject,
    "embassy_id": members.c.embassy_id,
}
ACCESS_LOG_SCOPE_COLUMNS = {"owner_subject": members.c.owner_subject, "member_id": members.c.id}


@dataclass(frozen=True)
class Actor:
    """Who acts on a record: the person themselves, or staff with the role that reaches it."""

    role: str
    subject: str | None  # staff only: the person is "the person", not an identifier
    is_person: bool


def actor_for(decision: Decision, record: Mapping[Any, Any]) -> Actor:
    if decision.is_own(record):
        return Actor(Role.CITIZEN.value, None, True)
    reaching = [g for g in decision.reaching(record) if g.role is not Role.CITIZEN]
    role = reaching[0].role.value if reaching else decision.roles[0]
    return Actor(role, decision.principal.subject, False)


async def locked_member(
    session: AsyncSession, decision: Decision, member_id: UUID
) -> Mapping[Any, Any]:
    """The member's row, locked for this transaction, if the decision reaches it."""
    row = (
        await session.execute(
            select(members)
            .where(members.c.id == member_id, decision.where(SCOPE_COLUMNS))
            .with_for_update()
        )
    ).first()
    if row is None:
        raise MemberNotFound(str(member_id))
    return row._mapping


def check_version(row: Mapping[Any, Any], expected: int | None) -> None:
    if expected is not None and row["version"] != expected:
        raise VersionMismatch(row["version"])


async def bump(
    session: AsyncSession, member_id: UUID, values: Mapping[Any, Any], now: datetime
) -> Mapping[Any, Any]:
    """Write ``values``, move the version on; returns the new row."""
    result = await session.execute(
        update(members)
        .where(members.c.id == member_id)
        .values(**values, updated_at=now, version=members.c.version + 1)
        .returning(*members.c)
    )
    return result.one()._mapping


def returned(record: Mapping[str, Any]) -> list[str]:
    """The fields of a member's record an answer carries (what its audit entry names)."""
    return [f for f in MEMBER_FIELDS if f in record]
