"""A person's access log: the registry's own audit entries merged with the other
services' (kept by :mod:`registry.access_log.consumer`), newest first."""

from __future__ import annotations

import heapq
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry import SERVICE_NAME
from registry.access_log.tables import member_accesses
from registry.members.reads import ACCESS_LOG_FIELDS
from registry.tables import audit_log


async def access_log(
    *,
    sessions: async_sessionmaker[AsyncSession],
    member_id: UUID,
    before: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Who accessed a member's record in any service, newest first (at most ``limit``)."""
    own = (
        select(
            *(audit_log.c[f] for f in ACCESS_LOG_FIELDS),
            literal(SERVICE_NAME).label("service"),
        )
        .where(audit_log.c.record_id == member_id)
        .order_by(audit_log.c.occurred_at.desc(), audit_log.c.id.desc())
        .limit(limit)
    )
    others = (
        select(*(member_accesses.c[f] for f in ACCESS_LOG_FIELDS), member_accesses.c.service)
        .where(member_accesses.c.record_id == member_id)
        .order_by(member_accesses.c.occurred_at.desc(), member_accesses.c.audit_id.desc())
        .limit(limit)
    )
    if before is not None:
        own = own.where(audit_log.c.occurred_at < before)
        others = others.where(member_accesses.c.occurred_at < before)
    async with sessions() as session:
        ours = [dict(r) for r in (await session.execute(own)).mappings().all()]
        theirs = [dict(r) for r in (await session.execute(others)).mappings().all()]
    merged = heapq.merge(ours, theirs, key=lambda r: r["occurred_at"], reverse=True)
    return list(merged)[:limit]
