"""What proposals need of needs and of the ranking: the candidates' scores and the
need's status, through the needs' own lifecycle rules and events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.outbox import OutboxWriter
from matching.needs import service as needs
from matching.ranking import service as ranking
from matching.ranking.service import ScoredCandidate
from matching.resources import NeedClosedStep


async def score_candidates(
    session: AsyncSession, need: Mapping[str, Any], member_ids: Sequence[UUID]
) -> dict[UUID, ScoredCandidate | str]:
    """Per expert: their ScoredCandidate if they are one for this need now, else why not."""
    return await ranking.candidates_among(session, need, member_ids)


async def set_status(
    session: AsyncSession,
    outbox: OutboxWriter,
    need: Mapping[str, Any],
    status: str,
    now: datetime,
    *,
    on_close: NeedClosedStep,
) -> None:
    """Move the need to ``status`` through its lifecycle, with the need's own event
    (``matching.need.updated``, or ``matching.need.closed`` for filled); ``on_close``
    runs if it closes."""
    await needs.record_status(session, outbox, need["id"], status, now=now, on_close=on_close)
