"""Use cases of partner organisations: one transaction each, SQL only (the caller
audits). Every save keeps a version row."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, and_, any_, literal, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from returnees.partners import domain
from returnees.partners.tables import partner_versions, partners

# The columns the policy's scopes compare (policy.yaml, resource returnee_partner).
SCOPE_COLUMNS: dict[str, Any] = {"partner_org": partners.c.partner_org}


class DuplicatePartnerOrg(Exception):
    pass


class VersionConflict(Exception):
    def __init__(self, current: int) -> None:
        super().__init__(f"the current version is {current}")
        self.current = current


@dataclass(frozen=True)
class PartnerFields:
    name: str
    contact_name: str
    contact_email: str | None
    contact_phone: str | None
    services: Sequence[str]
    regions: Sequence[str]
    prefectures: Sequence[str]
    active: bool

    def values(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "contact_name": self.contact_name,
            "contact_email": self.contact_email,
            "contact_phone": self.contact_phone,
            "services": sorted(set(self.services)),
            "regions": list(self.regions),
            "prefectures": list(self.prefectures),
            "active": self.active,
        }


async def _version_row(
    session: AsyncSession,
    partner_id: UUID,
    version: int,
    values: dict[str, Any],
    actor: str,
    now: datetime,
) -> UUID:
    version_id = uuid.uuid4()
    await session.execute(
        partner_versions.insert().values(
            id=version_id,
            partner_id=partner_id,
            version=version,
            edited_by=actor,
            edited_at=now,
            **values,
        )
    )
    return version_id


async def create(
    session: AsyncSession, partner_org: str, fields: PartnerFields, *, actor: str, now: datetime
) -> tuple[dict[str, Any], UUID]:
    """A new partner (version 1) and its version row; raises DuplicatePartnerOrg."""
    partner_id = uuid.uuid4()
    values = fields.values()
    try:
        async with session.begin_nested():
            await session.execute(
                partners.insert().values(
                    id=partner_id,
                    partner_org=partner_org,
                    version=1,
                    created_at=now,
                    updated_at=now,
                    **values,
                )
            )
    except IntegrityError:
        raise DuplicatePartnerOrg(partner_org) from None
    version_id = await _version_row(session, partner_id, 1, values, actor, now)
    row = await load(session, partner_id, true())
    assert row is not None
    return row, version_id


async def save(
    session: AsyncSession,
    partner_id: UUID,
    fields: PartnerFields,
    *,
    expected: int | None,
    actor: str,
    now: datetime,
) -> tuple[dict[str, Any], UUID] | None:
    """A new version of a partner (None: no such partner); an ``expected`` version
    (If-Match) other than the current raises VersionConflict."""
    current = await load(session, partner_id, true(), lock=True)
    if current is None:
        return None
    if expected is not None and expected != current["version"]:
        raise VersionConflict(current["version"])
    version = current["version"] + 1
    values = fields.values()
    await session.execute(
        update(partners)
        .where(partners.c.id == partner_id)
        .values(version=version, updated_at=now, **values)
    )
    version_id = await _version_row(session, partner_id, version, values, actor, now)
    row = await load(session, partner_id, true())
    assert row is not None
    return row, version_id


async def load(
    session: AsyncSession, partner_id: UUID, where: ColumnElement[bool], *, lock: bool = False
) -> dict[str, Any] | None:
    statement = select(partners).where(partners.c.id == partner_id, where)
    if lock:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).mappings().first()
    return dict(row) if row is not None else None


async def search(
    session: AsyncSession,
    where: ColumnElement[bool],
    *,
    service: str | None = None,
    prefecture: str | None = None,
    active: bool | None = None,
) -> list[dict[str, Any]]:
    """Partners the decision reaches; with ``service`` and ``prefecture``, those that
    offer it there (``prefecture``: a slug or name, already checked by the caller)."""
    conditions: list[ColumnElement[bool]] = [where]
    if service is not None:
        conditions.append(literal(service) == any_(partners.c.services))
    if prefecture is not None:
        slug, region = domain.prefecture_slug(prefecture)
        conditions.append(
            or_(
                literal(slug) == any_(partners.c.prefectures),
                literal(region) == any_(partners.c.regions),
            )
        )
    if active is not None:
        conditions.append(partners.c.active.is_(active))
    rows = await session.execute(
        select(partners).where(and_(*conditions)).order_by(partners.c.name, partners.c.id)
    )
    return [dict(r) for r in rows.mappings()]
