"""Rows as plain dicts: the one shape use cases pass around and the policy projects."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable


async def first(session: AsyncSession, statement: Executable) -> dict[str, Any] | None:
    row = (await session.execute(statement)).mappings().first()
    return dict(row) if row is not None else None


async def one(session: AsyncSession, statement: Executable) -> dict[str, Any]:
    return dict((await session.execute(statement)).mappings().one())


async def every(session: AsyncSession, statement: Executable) -> list[dict[str, Any]]:
    return [dict(r) for r in (await session.execute(statement)).mappings().all()]
