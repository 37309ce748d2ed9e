"""What the SLA jobs of applications and difficulty reports share: taking the cases past
their due date and flagging them escalated, once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import RowMapping, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession


async def flag_overdue(
    session: AsyncSession, cases: Table, running: Iterable[str], *, now: datetime, batch: int
) -> Sequence[RowMapping]:
    """Cases of ``cases`` (a table with ``status``, ``due_at``, ``escalated_at``,
    ``version``, ``updated_at``) whose clock is ``running`` and past due, not escalated
    yet: locked (others' locked ones skipped, so parallel jobs never flag one twice),
    oldest due first, flagged escalated with their version bumped. Returned as they were
    before the flag, for the caller's history line and event."""
    rows = (
        (
            await session.execute(
                select(cases)
                .where(
                    cases.c.escalated_at.is_(None),
                    cases.c.status.in_(sorted(running)),
                    cases.c.due_at < now,
                )
                .order_by(cases.c.due_at)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        )
        .mappings()
        .all()
    )
    for row in rows:
        await session.execute(
            update(cases)
            .where(cases.c.id == row["id"])
            .values(escalated_at=now, version=row["version"] + 1, updated_at=now)
        )
    return rows
