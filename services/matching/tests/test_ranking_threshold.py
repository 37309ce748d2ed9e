"""The threshold ranking (``rank``) returns exactly what scoring every candidate
(``exhaustive=True``) returns: same experts, same order, same scores. Checked on the
evaluation set's 1,000 experts and 60 needs, with the usual seed sample and with a
tiny one (weak first thresholds, so wide retrievals), and with other weights."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from diaspora_events.contracts.registry import MemberProfile, MemberUpdatedV1
from diaspora_reference import esco
from matching.bootstrap import Matching
from matching.experts.projection import apply_event
from matching.ranking import scoring
from matching.ranking.scoring import NeedQuery, rank

pytestmark = pytest.mark.integration

EVALUATION = Path(__file__).resolve().parents[1] / "evaluation"
TODAY = date(2026, 12, 1)  # the day the evaluation set is written for


def _lines(name: str) -> list[dict[str, Any]]:
    with (EVALUATION / name).open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def _query(need: dict[str, Any]) -> NeedQuery:
    values = dict(need)
    for day in ("starts_on", "ends_on"):
        values[day] = date.fromisoformat(values[day]) if values.get(day) else None
    values["skills"] = [
        {**s, "label": s.get("label") or esco.skill(s["esco_uri"]).label("fr")}  # type: ignore[union-attr]
        for s in need["skills"]
    ]
    return NeedQuery.of(values)


@pytest.fixture
async def pool(matching: Matching) -> list[NeedQuery]:
    at = datetime(2026, 11, 1, tzinfo=UTC)
    async with matching.sessions() as session, session.begin():
        for expert in _lines("pool.jsonl"):
            event = MemberUpdatedV1(
                member_id=UUID(expert["member_id"]),
                updated_at=at,
                changed_fields=["profile"],
                profile=MemberProfile.model_validate(expert["profile"]),
            )
            await apply_event(session, event, at)
    return [_query(labelled["need"]) for labelled in _lines("needs.jsonl")]


async def _same(
    matching: Matching,
    needs: list[NeedQuery],
    *,
    limit: int = 20,
    weights: dict[str, float] | None = None,
) -> None:
    async with matching.sessions() as session:
        for index, need in enumerate(needs):
            fast = await rank(session, need, limit=limit, today=TODAY, weights=weights)
            every = await rank(
                session, need, limit=limit, today=TODAY, weights=weights, exhaustive=True
            )
            assert [(c.member_id, c.score) for c in fast] == [
                (c.member_id, c.score) for c in every
            ], f"need {index} ({need.title}), weights {weights}"


async def test_threshold_ranking_is_exact(matching: Matching, pool: list[NeedQuery]) -> None:
    await _same(matching, pool)
    await _same(matching, pool[:20], limit=5)


async def test_exact_with_weak_thresholds_and_other_weights(
    matching: Matching, pool: list[NeedQuery], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Seeds of 3 experts: thresholds far below the final one, retrievals at their widest.
    monkeypatch.setattr(scoring, "SEED_SAMPLE", 3)
    await _same(matching, pool)
    for weights in (
        {"skills": 1.0},
        {"text": 1.0, "education": 0.2},
        {"occupation": 0.2, "experience": 0.6, "education": 0.2},
    ):
        await _same(matching, pool[::3], weights=weights)
