"""Ranking quality (issue 5): precision@10 and recall@20 on the labelled evaluation set.

The fixed synthetic pool (``services/matching/evaluation/pool.jsonl``: 1,000 experts)
is loaded into a fresh matching database through the read model's own code path
(each expert as a ``registry.member.updated`` event applied by
``matching.experts.projection.apply_event``, consent filter included); the 60 needs
(``needs.jsonl``) are posted through ``matching.needs.service.post_need`` (the
reference-data checks of the API); each need is ranked by
``matching.ranking.scoring.rank`` (top 20) and compared with the experts a
coordinator would pick (labels written by the rules in
``services/matching/evaluation/README.md``).

Printed: precision@10, recall@20 (means over needs, and per kind of need), the best
precision@10 any ranking could reach (needs with fewer than 10 relevant experts cap
it), ablations (one component alone, or one left out), and the overlap of the fast
top 20 (retrieval) with the exhaustive one.

    uv run python bench/matching_eval.py
    uv run python bench/matching_eval.py --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import _bootstrap  # noqa: F401  (keeps bench/ off sys.path: see bench/_bootstrap.py)

from diaspora_devstack import stack
from diaspora_devstack.testing import asyncpg_url, create_database, drop_database, migrate
from diaspora_events.contracts.registry import MemberProfile, MemberUpdatedV1
from matching.bootstrap import bootstrap
from matching.experts.projection import apply_event
from matching.needs.domain import SkillSought
from matching.needs.service import NeedCommand, post_need
from matching.ranking.scoring import WEIGHTS, NeedQuery, rank
from matching.settings import MatchingSettings

EVALUATION = Path(__file__).resolve().parent.parent / "services" / "matching" / "evaluation"
TODAY = date(2026, 12, 1)  # the day the evaluation set is written for (build.py)
KINDS = {
    0: "ISCO unit group sought",
    1: "ISCO minor group sought",
    2: "no occupation (skills, text)",
}


def load(name: str) -> list[dict[str, Any]]:
    with (EVALUATION / name).open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def command(need: dict[str, Any]) -> NeedCommand:
    values = dict(need)
    values["skills"] = [
        SkillSought(label=s.get("label", ""), esco_uri=s.get("esco_uri")) for s in need["skills"]
    ]
    for day in ("starts_on", "ends_on"):
        values[day] = date.fromisoformat(values[day]) if values.get(day) else None
    return NeedCommand(**values)


def metrics(ranked: list[UUID], relevant: set[UUID]) -> dict[str, float]:
    top10, top20 = set(ranked[:10]), set(ranked[:20])
    return {
        "precision_at_10": len(top10 & relevant) / 10,
        "recall_at_20": len(top20 & relevant) / len(relevant) if relevant else 1.0,
        "best_precision_at_10": min(len(relevant), 10) / 10,
    }


def mean(values: list[float]) -> float:
    return round(statistics.fmean(values), 3) if values else 0.0


async def evaluate(infra: stack.Endpoints, keep: bool = False) -> dict[str, Any]:
    url = await create_database(infra.pg_url, "matching_eval")
    await asyncio.to_thread(migrate, "matching", url)
    service = bootstrap(
        MatchingSettings(database_url=asyncpg_url(url), environment="test", json_logs=False)
    )
    try:
        pool, needs = load("pool.jsonl"), load("needs.jsonl")
        started = time.perf_counter()
        at = datetime(2026, 11, 1, tzinfo=UTC)
        for chunk in range(0, len(pool), 200):
            async with service.sessions() as session, session.begin():
                for expert in pool[chunk : chunk + 200]:
                    event = MemberUpdatedV1(
                        member_id=UUID(expert["member_id"]),
                        updated_at=at,
                        changed_fields=["profile"],
                        profile=MemberProfile.model_validate(expert["profile"]),
                    )
                    await apply_event(session, event, at)
        load_seconds = time.perf_counter() - started

        posted: list[tuple[dict[str, Any], dict[str, Any]]] = []
        async with service.sessions() as session, session.begin():
            for labelled in needs:
                row, _ = await post_need(
                    session,
                    service.outbox,
                    command=command(labelled["need"]),
                    created_by="evaluation",
                    publish=True,
                )
                posted.append((labelled, row))

        variants: dict[str, dict[str, float] | None] = {"scorer": None}
        for name in WEIGHTS:
            variants[f"only {name}"] = {name: 1.0}
            variants[f"without {name}"] = {k: v for k, v in WEIGHTS.items() if k != name}
        results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
        per_kind: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS.values()}
        overlaps: list[float] = []
        latencies: list[float] = []
        async with service.sessions() as session:
            for index, (labelled, row) in enumerate(posted):
                query = NeedQuery.of(row)
                relevant = {UUID(m) for m in labelled["relevant"]}
                for name, weights in variants.items():
                    t0 = time.perf_counter()
                    found = await rank(session, query, limit=20, today=TODAY, weights=weights)
                    if weights is None:
                        latencies.append(time.perf_counter() - t0)
                    scored = metrics([c.member_id for c in found], relevant)
                    results[name].append(scored)
                    if weights is None:
                        per_kind[KINDS[index % 3]].append(scored)
                        exhaustive = await rank(
                            session, query, limit=20, today=TODAY, exhaustive=True
                        )
                        fast = {c.member_id for c in found}
                        overlaps.append(
                            len(fast & {c.member_id for c in exhaustive}) / max(1, len(exhaustive))
                        )

        def summary(rows: list[dict[str, float]]) -> dict[str, float]:
            return {
                "precision_at_10": mean([r["precision_at_10"] for r in rows]),
                "recall_at_20": mean([r["recall_at_20"] for r in rows]),
                "best_precision_at_10": mean([r["best_precision_at_10"] for r in rows]),
                "needs": len(rows),
            }

        sizes = sorted(len(n["relevant"]) for n in needs)
        return {
            "experts_in_pool": len(pool),
            "experts_loaded": sum(
                1 for e in pool if any(c["granted"] for c in e["profile"]["consents"])
            ),
            "needs": len(needs),
            "relevant_per_need": {
                "min": sizes[0],
                "median": sizes[len(sizes) // 2],
                "max": sizes[-1],
            },
            "overall": summary(results["scorer"]),
            "by_kind": {kind: summary(rows) for kind, rows in per_kind.items()},
            "ablations": {
                name: summary(rows) for name, rows in results.items() if name != "scorer"
            },
            "top20_overlap_with_exhaustive": mean(overlaps),
            "ranking_ms_median": round(1000 * statistics.median(latencies), 1),
            "load_seconds": round(load_seconds, 1),
        }
    finally:
        await service.close()
        if not keep:
            await drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the evaluation database")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    infra, _ = stack.up()
    report = asyncio.run(evaluate(infra, keep=args.keep))
    if args.json:
        print(json.dumps(report, indent=2))
        return
    overall = report["overall"]
    print(
        f"Matching evaluation: {report['needs']} needs, {report['experts_in_pool']} experts "
        f"({report['experts_loaded']} consenting), relevant per need "
        f"{report['relevant_per_need']['min']}-{report['relevant_per_need']['max']} "
        f"(median {report['relevant_per_need']['median']})"
    )
    print(
        f"  precision@10 {overall['precision_at_10']:.3f} "
        f"(best reachable {overall['best_precision_at_10']:.3f})   "
        f"recall@20 {overall['recall_at_20']:.3f}"
    )
    for kind, figures in report["by_kind"].items():
        print(
            f"    {kind:<32} P@10 {figures['precision_at_10']:.3f}  "
            f"R@20 {figures['recall_at_20']:.3f}  ({figures['needs']} needs)"
        )
    print("  ablations (same needs):")
    for name, figures in report["ablations"].items():
        print(
            f"    {name:<22} P@10 {figures['precision_at_10']:.3f}  "
            f"R@20 {figures['recall_at_20']:.3f}"
        )
    print(
        f"  top-20 overlap of retrieval with exhaustive scoring: "
        f"{report['top20_overlap_with_exhaustive']:.3f}; median ranking "
        f"{report['ranking_ms_median']} ms; pool loaded in {report['load_seconds']} s"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
