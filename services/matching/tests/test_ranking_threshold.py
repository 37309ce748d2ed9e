"""The threshold ranking (``rank``) returns exactly what scoring every candidate
(``exhaustive=True``) returns: same experts, same order, same scores. Checked on the
evaluation set's 1,000 experts and 60 needs, with the usual seed sample and with a
tiny one (weak first thresholds, so wide retrievals), and with other weights."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text

from diaspora_devstack.testing import wait_until
from diaspora_events.contracts.registry import MemberProfile, MemberUpdatedV1
from diaspora_reference import esco
from matching.experts.projection import apply_event
from matching.ranking import scoring
from matching.ranking.scoring import NeedQuery, rank
from matching.resources import Matching

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


@pytest.mark.parametrize("work_mode", ["on_site", "remote"])
async def test_the_ranking_reads_the_indexes_of_the_needs_type(
    matching: Matching, pool: list[NeedQuery], work_mode: str
) -> None:
    # The GIN indexes are partial, per need type (and remote work): PostgreSQL may only
    # use them when the statement's text names the type (and remote work), not in a
    # prepared statement's generic plan if the type is a parameter. The statement runs
    # with a generic plan, and the indexes' scan counters say which were read.
    need = next(n for n in pool if n.skills)
    suffix = "_remote_idx" if work_mode == "remote" else "_idx"
    for need_type in sorted(scoring.NEED_TYPES):
        ranking = scoring.plan(
            dataclasses.replace(need, type=need_type, work_mode=work_mode), today=TODAY
        )
        pattern = f"experts\\_%\\_{need_type}{suffix}"
        before = await _index_scans(matching, pattern)
        async with matching.sessions() as session, session.begin():
            queries = await scoring.compile_queries(session, ranking.texts)
            statement, values = ranking.statement(
                limit=20, condition=ranking.evidence.retrieval(ranking.points)
            )
            await session.execute(text("SET LOCAL enable_seqscan = off"))
            await session.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
            await session.execute(statement, {**values, **queries})
            await session.execute(text("SELECT pg_stat_force_next_flush()"))

        async def read(pattern: str = pattern, before: int = before) -> bool:
            return await _index_scans(matching, pattern) > before

        await wait_until(read, timeout=10, message=f"a scan of the {need_type}{suffix} indexes")


async def _index_scans(matching: Matching, pattern: str) -> int:
    async with matching.sessions() as session:
        await session.execute(text("SELECT pg_stat_clear_snapshot()"))
        found = await session.execute(
            text(
                "SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_user_indexes "
                "WHERE relname = 'experts' AND indexrelname LIKE :pattern"
            ),
            {"pattern": pattern},
        )
        return int(found.scalar_one())


def test_an_unknown_need_type_is_refused() -> None:
    need = NeedQuery(type="teaching'; DROP TABLE experts; --")
    with pytest.raises(ValueError, match="unknown need type"):
        scoring.plan(need, today=TODAY)
