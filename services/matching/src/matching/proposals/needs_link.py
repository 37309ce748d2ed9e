"""What proposals need of needs and of the ranking: the candidates' scores and the
need's status, through the needs' own lifecycle rules and events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.outbox import OutboxWriter


@dataclass(frozen=True)
class Candidate:
    """An expert who passes the need's hard filters, with the ranking's verdict."""

    score: float
    # The ranking's reasons as stored on the proposal (JSON), and their short text form.
    reasons: list[dict[str, Any]]
    summary: list[str]


async def score_candidates(
    session: AsyncSession, need: Mapping[str, Any], member_ids: Sequence[UUID]
) -> dict[UUID, Candidate | str]:
    """Per expert: their Candidate if they are one for this need now, else why not."""
    # Imported here: the ranking imports Candidate from this module.
    from matching.ranking import service as ranking

    return await ranking.candidates_among(session, need, member_ids)


async def set_status(
    session: AsyncSession,
    outbox: OutboxWriter,
    need: Mapping[str, Any],
    status: str,
    now: datetime,
) -> None:
    """Move the need to ``status`` through its lifecycle, with the need's own event
    (``matching.need.updated``, or ``matching.need.closed`` for filled)."""
    from matching.needs import service as needs

    await needs.record_status(session, outbox, need["id"], status, now=now)
