"""The ranking as other use cases need it: score given experts for a need, or say why
they are no candidates (proposals check this before anything is sent)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from matching.experts.tables import experts
from matching.ranking.reasons import reasons
from matching.ranking.scoring import NeedQuery, rank


@dataclass(frozen=True)
class ScoredCandidate:
    """An expert who passes the need's hard filters, with the ranking's verdict."""

    score: float
    # The ranking's reasons as stored on the proposal (JSON), and their short text form.
    reasons: list[dict[str, Any]]
    summary: list[str]


def why_not(expert: Mapping[str, Any] | None, need: NeedQuery, today: date) -> str:
    """The first hard filter an expert fails (English, for problem details)."""
    if expert is None:
        return "not a candidate: no consent to be contacted for missions (or unknown member)"
    if need.type not in expert["mission_types"]:
        return f"not available for {need.type} missions"
    missing = [lang for lang in need.languages if lang not in expert["languages"]]
    if missing:
        return f"does not speak {', '.join(missing)}"
    if (
        need.min_isced_level is not None
        and (expert["max_isced_level"] or -1) < need.min_isced_level
    ):
        return f"education below ISCED level {need.min_isced_level}"
    start = need.starts_on or today
    end = need.ends_on or need.starts_on or today
    if expert["available_from"] is not None and expert["available_from"] > start:
        return f"available only from {expert['available_from'].isoformat()}"
    if expert["available_until"] is not None and expert["available_until"] < end:
        return f"available only until {expert['available_until'].isoformat()}"
    if need.work_mode == "remote" and not expert["remote"]:
        return "not available to work remotely"
    return "not a candidate for this need"


async def candidates_among(
    session: AsyncSession,
    need: Mapping[str, Any],
    member_ids: Sequence[UUID],
    *,
    today: date | None = None,
) -> dict[UUID, ScoredCandidate | str]:
    """Per expert: their score and reasons if they are a candidate for the need now,
    else why not. Experts with no evidence of fit are still candidates (a coordinator
    chose them), with the score the ranking gives them."""
    today = today or date.today()
    query = NeedQuery.of(dict(need))
    wanted = list(dict.fromkeys(member_ids))
    found = await rank(
        session, query, limit=len(wanted) or 1, today=today, exhaustive=True, only=wanted
    )
    result: dict[UUID, ScoredCandidate | str] = {}
    for candidate in found:
        explained = reasons(candidate, query, "fr")
        result[candidate.member_id] = ScoredCandidate(
            score=candidate.score,
            reasons=[{"code": r.code, "text": r.text, "points": r.points} for r in explained],
            summary=[r.text for r in explained],
        )
    missing = [m for m in wanted if m not in result]
    if missing:
        rows = await session.execute(select(experts).where(experts.c.member_id.in_(missing)))
        by_id = {r["member_id"]: dict(r) for r in rows.mappings()}
        for member_id in missing:
            result[member_id] = why_not(by_id.get(member_id), query, today)
    return result
