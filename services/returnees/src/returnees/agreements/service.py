"""Use cases of the agreements register: one transaction each; every stage change is a
history row."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

import uuid_utils.compat as uuid_compat
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from returnees.agreements import domain
from returnees.agreements.tables import agreement_stages, agreements


async def create(
    session: AsyncSession, values: dict[str, Any], *, by: str, now: datetime
) -> dict[str, Any]:
    agreement_id = uuid_compat.uuid7()
    row = (
        (
            await session.execute(
                agreements.insert()
                .values(id=agreement_id, created_at=now, updated_at=now, version=1, **values)
                .returning(*agreements.c)
            )
        )
        .mappings()
        .one()
    )
    await session.execute(
        agreement_stages.insert().values(
            agreement_id=agreement_id,
            from_stage=None,
            to_stage=values["stage"],
            at=now,
            by_subject=by,
        )
    )
    return dict(row)


async def load(
    session: AsyncSession, agreement_id: UUID, *, lock: bool = False
) -> dict[str, Any] | None:
    query = select(agreements).where(agreements.c.id == agreement_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).mappings().first()
    return dict(row) if row is not None else None


async def history(session: AsyncSession, agreement_id: UUID) -> list[dict[str, Any]]:
    query = (
        select(agreement_stages)
        .where(agreement_stages.c.agreement_id == agreement_id)
        .order_by(agreement_stages.c.id)
    )
    return [dict(r) for r in (await session.execute(query)).mappings()]


async def search(
    session: AsyncSession, *, country: str | None, stage: str | None
) -> list[dict[str, Any]]:
    query = select(agreements).order_by(agreements.c.country, agreements.c.created_at)
    if country:
        query = query.where(agreements.c.country == country)
    if stage:
        query = query.where(agreements.c.stage == stage)
    return [dict(r) for r in (await session.execute(query)).mappings()]


async def move(
    session: AsyncSession,
    row: dict[str, Any],
    stage: str,
    *,
    on: date | None,
    note: str | None,
    by: str,
    now: datetime,
) -> dict[str, Any]:
    """Move the locked agreement to ``stage`` (raises :class:`domain.StageRefused`)."""
    domain.check_move(row["stage"], stage)
    values: dict[str, Any] = {"stage": stage, "updated_at": now, "version": row["version"] + 1}
    if stage == "signed":
        values["signed_on"] = on or now.date()
    if stage == "in_force" and row["in_force_on"] is None:
        values["in_force_on"] = on or now.date()
    updated = (
        (
            await session.execute(
                update(agreements)
                .where(agreements.c.id == row["id"])
                .values(**values)
                .returning(*agreements.c)
            )
        )
        .mappings()
        .one()
    )
    await session.execute(
        agreement_stages.insert().values(
            agreement_id=row["id"],
            from_stage=row["stage"],
            to_stage=stage,
            at=now,
            by_subject=by,
            note=note,
        )
    )
    return dict(updated)
