"""Matching at scale (issue 5): top-20 latency over a million experts, and the rebuild.

    uv run python bench/matching_scale.py                       # full run: 1,000,000 experts
    uv run python bench/matching_scale.py --experts 50000 --repeats 3   # smoke run
    uv run python bench/matching_scale.py --json > result.json
    uv run python bench/matching_scale.py --skip-ranking --keep    # build once, keep it
    uv run python bench/matching_scale.py --database postgresql://.../t_bench_matching_x
                                                  # step 3 only, over a kept read model

One run prints every figure:

1. Registry events: ``--experts`` synthetic members (``bench/synthetic_members.py``:
   countries, names, ISCO occupations, ESCO skills, languages, education), each made an
   expert (consent to be contacted for missions, mission types, availability, jobs with
   years for their occupations), are published as real CloudEvents
   ``registry.member.registered`` (the contract ``MemberRegisteredV1`` with its
   ``MemberProfile`` snapshot, ``diaspora_events.cloudevents.encode``, keyed by member)
   to a fresh ``<prefix>registry.members`` topic (the settings of the real topic) by
   ``--workers`` processes, each with a batching producer (``acks=all``, idempotent).
2. Rebuild: ``matching.experts.rebuild.rebuild`` (what ``matching-rebuild-experts``
   runs) replays that topic from its beginning into a fresh, migrated matching
   database, then swaps the tables in; timed end to end (events/s).
3. Ranking: needs = the evaluation set's 60 needs (``services/matching/evaluation``)
   plus ``--generated-needs`` drawn from the same distribution as the experts, posted
   through ``matching.needs.service.post_need``. For each need the fast top 20
   (``matching.ranking.scoring.rank``, exactly what ``GET /needs/{id}/candidates``
   calls, reasons' matched terms included) runs once to warm up and then
   ``--repeats`` times, timed (p50/p95/p99 over all timed runs; target p95 < 100 ms);
   then the exhaustive scoring of every candidate (``exhaustive=True``) gives the
   reference top 20. Overlap per need: |fast top 20 ∩ exhaustive top 20| / |exhaustive
   top 20|, where a fast candidate whose score equals the exhaustive 20th score also
   counts (an exact tie at the cut: either expert is a correct 20th); target >= 0.95.
   Scores are compared too: a fast candidate's score must be the exhaustive one.

Everything runs on this machine against the real PostgreSQL and Kafka of devstack
(``diaspora_devstack.stack.up()`` reuses or starts them). The load average is printed
at each step: other work on the machine changes the figures. Progress goes to stderr,
figures to stdout; a missed target prints MISSED (exit status 0 unless something
failed). The database and the topic are deleted at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import logging
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import _bootstrap  # noqa: F401  (first: keeps bench/ off the import path)
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from diaspora_devstack import stack
from diaspora_devstack.testing import (
    asyncpg_url,
    create_database,
    delete_topics_with_prefix,
    drop_database,
    migrate,
    unique_name,
)
from diaspora_events.cloudevents import encode, headers_to_kafka
from diaspora_events.contracts.registry import MemberProfile, MemberRegisteredV1
from diaspora_events.kafka import ensure_topics
from diaspora_events.topics import REGISTRY_MEMBERS
from diaspora_reference import isco
from matching.bootstrap import bootstrap
from matching.experts.rebuild import rebuild
from matching.needs.domain import SkillSought
from matching.needs.service import NeedCommand, post_need
from matching.ranking.scoring import NeedQuery, rank
from matching.settings import MatchingSettings

HERE = Path(__file__).resolve().parent
EVALUATION = HERE.parent / "services" / "matching" / "evaluation"
TODAY = date(2026, 12, 1)  # the day the evaluation's needs are written for
TARGET_P95_MS = 100.0
TARGET_OVERLAP = 0.95
TOP = 20
CHUNK = 10_000
SOURCE = "/tg/diaspora/registry"
MISSIONS = ("teaching", "medical", "volunteering", "co_development", "technical_assistance")


def _load(name: str) -> ModuleType:
    """A sibling bench script as a module (bench/ is not on the import path, on purpose)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def say(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


def load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "n/a"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# -- 1. registry events -----------------------------------------------------------------

_generator: Any = None


def _init_worker(seed: int) -> None:
    global _generator
    logging.disable(logging.WARNING)
    _generator = _load("synthetic_members").Generator(seed)


def as_expert(member: dict[str, Any], r: random.Random) -> dict[str, Any]:
    """A synthetic member made an expert: consent to be contacted for missions, mission
    types and availability, and a job (with its years) for each occupation."""
    registered: datetime = member["registered_at"]
    profile = dict(member)
    profile["consents"] = [
        *member["consents"],
        {"purpose": "contact_for_missions", "granted": True, "at": registered},
    ]
    missions = member["availability"]["mission_types"] or sorted(
        r.sample(MISSIONS, r.randint(1, 3))
    )
    available_from = available_until = None
    u = r.random()
    if u < 0.2:
        available_from = TODAY + timedelta(days=r.randint(0, 200))
    elif u < 0.3:
        available_until = TODAY + timedelta(days=r.randint(30, 400))
    profile["availability"] = {
        "mission_types": missions,
        "available_from": available_from,
        "available_until": available_until,
        "remote": r.random() < 0.4,
    }
    age = TODAY.year - member["date_of_birth"].year
    experience = []
    for occupation in member["occupations"]:
        code = occupation["isco_code"]
        years = r.randint(0, max(0, min(30, age - 20)))
        experience.append(
            {
                "title": isco.label(code, "fr" if r.random() < 0.7 else "en") or code,
                "isco_code": code if r.random() < 0.8 else None,
                "start_year": TODAY.year - years,
                "end_year": None if r.random() < 0.7 else TODAY.year - r.randint(0, years),
            }
        )
    profile["experience"] = experience
    return profile


def _produce_chunk(bootstrap: str, topic: str, start: int, count: int) -> tuple[int, float]:
    """Generate members [start, start+count), publish them; returns (count, seconds)."""
    began = time.perf_counter()
    generator = _generator
    generator.random.seed(start)  # each chunk on its own: the same members whatever the split
    r = random.Random(start + 1)
    records = []
    for member in generator.members(count, start=start):
        profile = MemberProfile.model_validate(as_expert(member, r))
        event = MemberRegisteredV1(
            member_id=member["member_id"],
            given_name=profile.given_name,
            family_name=profile.family_name,
            date_of_birth=profile.date_of_birth,
            email=profile.email,
            phone=profile.phone,
            country_of_residence=profile.country_of_residence,
            preferred_language=profile.preferred_language,
            registered_at=member["registered_at"],
            profile=profile,
        )
        _id, headers, value = encode(event, source=SOURCE, time=member["registered_at"])
        records.append((event.aggregate_id().encode(), headers_to_kafka(headers), value))

    async def send() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            enable_idempotence=True,
            acks="all",
            linger_ms=20,
            max_batch_size=512 * 1024,
            max_request_size=4 * 1024 * 1024,
        )
        await producer.start()
        try:
            pending = []
            for key, headers, value in records:
                pending.append(await producer.send(topic, value=value, key=key, headers=headers))
                if len(pending) >= 5000:
                    await asyncio.gather(*pending)
                    pending.clear()
            await asyncio.gather(*pending)
        finally:
            await producer.stop()

    asyncio.run(send())
    return count, time.perf_counter() - began


async def produce(bootstrap: str, topic: str, experts: int, seed: int, workers: int) -> float:
    await ensure_topics(bootstrap, [replace(REGISTRY_MEMBERS, name=topic)])
    began = time.perf_counter()
    done = 0
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(seed,)) as pool:
        futures = [
            loop.run_in_executor(
                pool, _produce_chunk, bootstrap, topic, start, min(CHUNK, experts - start)
            )
            for start in range(0, experts, CHUNK)
        ]
        for future in asyncio.as_completed(futures):
            count, _seconds = await future
            done += count
            elapsed = time.perf_counter() - began
            say(f"   published {done:,}/{experts:,} ({done / elapsed:,.0f} events/s)")
    return time.perf_counter() - began


# -- 3. needs and ranking ---------------------------------------------------------------


def evaluation_needs() -> list[dict[str, Any]]:
    with (EVALUATION / "needs.jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line)["need"] for line in lines]


def generated_needs(count: int, seed: int) -> list[dict[str, Any]]:
    """Needs drawn like the experts: an occupation some experts have (unit or minor
    group, or none), skills of the generator's pool, a mission type, French."""
    synthetic = _load("synthetic_members")
    generator = synthetic.Generator(seed)
    r = random.Random(seed)
    members = [m for m in generator.members(2000, start=10**9) if m["occupations"]]
    skills = synthetic.skill_pool()
    needs = []
    for i in range(count):
        member = r.choice(members)
        code = member["occupations"][0]["isco_code"]
        occupation = [code, code[:3], None][i % 3]
        sought = [
            {"esco_uri": uri, "label": label} for uri, label in r.sample(skills, r.randint(1, 3))
        ]
        if r.random() < 0.5:
            sought.append({"label": r.choice(synthetic.FREE_SKILLS)})
        label = isco.label(code, "fr") or "expert"
        starts = TODAY + timedelta(days=r.randint(20, 150))
        needs.append(
            {
                "title": f"Mission : {label}",
                "type": r.choice(MISSIONS),
                "institution": "Institution publique togolaise",
                "institution_kind": "ministry",
                "description": f"Nous recherchons un profil {label.lower()} pour une mission "
                f"au Togo ({', '.join(s['label'] for s in sought)}).",
                "occupations": [occupation] if occupation else [],
                "skills": sought,
                "languages": ["fr"],
                "min_isced_level": r.choice([None, None, 3, 5]),
                "starts_on": starts.isoformat(),
                "ends_on": (starts + timedelta(days=r.randint(14, 60))).isoformat(),
                "region": "TG-M",
                "work_mode": r.choice(["on_site", "on_site", "remote", "hybrid"]),
                "experts_wanted": 1,
            }
        )
    return needs


def command(need: dict[str, Any]) -> NeedCommand:
    values = dict(need)
    values["skills"] = [
        SkillSought(label=s.get("label", ""), esco_uri=s.get("esco_uri")) for s in need["skills"]
    ]
    for day in ("starts_on", "ends_on"):
        values[day] = date.fromisoformat(values[day]) if values.get(day) else None
    return NeedCommand(**values)


def overlap(fast: list[Any], exhaustive: list[Any]) -> tuple[float, float, int]:
    """(score-aware overlap, plain set overlap, fast scores differing from the exhaustive
    ones). Score-aware: a fast candidate outside the exhaustive top 20 still counts when
    its score equals the exhaustive 20th score (a tie at the cut)."""
    if not exhaustive:
        return (1.0 if not fast else 0.0), (1.0 if not fast else 0.0), 0
    reference = {c.member_id: c.score for c in exhaustive}
    cut = exhaustive[-1].score if len(exhaustive) >= TOP else None
    plain = sum(1 for c in fast if c.member_id in reference)
    aware = sum(1 for c in fast if c.member_id in reference or (cut is not None and c.score == cut))
    wrong = sum(1 for c in fast if c.member_id in reference and reference[c.member_id] != c.score)
    return min(1.0, aware / len(exhaustive)), plain / len(exhaustive), wrong


async def measure_ranking(
    database: str, needs: list[dict[str, Any]], repeats: int
) -> dict[str, Any]:
    service = bootstrap(
        MatchingSettings(database_url=asyncpg_url(database), environment="test", json_logs=False)
    )
    try:
        queries = []
        async with service.sessions() as session, session.begin():
            for need in needs:
                row, _ = await post_need(
                    session, service.outbox, command=command(need), created_by="bench", publish=True
                )
                queries.append(NeedQuery.of(row))
        fast_ms: list[float] = []
        exhaustive_ms: list[float] = []
        per_need: list[dict[str, Any]] = []
        async with service.sessions() as session:
            for index, query in enumerate(queries):
                await rank(session, query, limit=TOP, today=TODAY)  # warm-up
                times = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    found = await rank(session, query, limit=TOP, today=TODAY)
                    times.append(1000 * (time.perf_counter() - t0))
                t0 = time.perf_counter()
                reference = await rank(session, query, limit=TOP, today=TODAY, exhaustive=True)
                exhaustive_ms.append(1000 * (time.perf_counter() - t0))
                await session.rollback()
                aware, plain, wrong = overlap(found, reference)
                fast_ms.extend(times)
                per_need.append(
                    {
                        "need": index,
                        "occupations": list(query.occupations),
                        "skills": len(query.skills),
                        "p50_ms": round(statistics.median(times), 1),
                        "max_ms": round(max(times), 1),
                        "exhaustive_ms": round(exhaustive_ms[-1], 1),
                        "found": len(found),
                        "overlap": round(aware, 3),
                        "plain_overlap": round(plain, 3),
                        "wrong_scores": wrong,
                    }
                )
                if (index + 1) % 10 == 0:
                    say(
                        f"   {index + 1}/{len(queries)} needs; fast p95 so far "
                        f"{percentile(fast_ms, 0.95):.1f} ms"
                    )
        slowest = sorted(per_need, key=lambda n: -n["max_ms"])[:5]
        return {
            "needs": len(queries),
            "timed_runs": len(fast_ms),
            "p50_ms": round(percentile(fast_ms, 0.50), 1),
            "p95_ms": round(percentile(fast_ms, 0.95), 1),
            "p99_ms": round(percentile(fast_ms, 0.99), 1),
            "max_ms": round(max(fast_ms), 1),
            "exhaustive_p50_ms": round(percentile(exhaustive_ms, 0.50), 1),
            "exhaustive_p95_ms": round(percentile(exhaustive_ms, 0.95), 1),
            "overlap_mean": round(statistics.fmean(n["overlap"] for n in per_need), 4),
            "overlap_min": min(n["overlap"] for n in per_need),
            "plain_overlap_mean": round(statistics.fmean(n["plain_overlap"] for n in per_need), 4),
            "needs_below_full_overlap": sum(1 for n in per_need if n["overlap"] < 1),
            "wrong_scores": sum(n["wrong_scores"] for n in per_need),
            "slowest": slowest,
        }
    finally:
        await service.close()


# -- the run ----------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "experts": args.experts,
        "load_average": {"start": load_average()},
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    endpoints, _started = await asyncio.to_thread(stack.up)
    if args.database:
        return await rank_kept(args, report)
    prefix = unique_name("bench_matching") + "."
    topic = prefix + REGISTRY_MEMBERS.name
    database = await create_database(endpoints.pg_url, "bench_matching")
    say(f"database {database.rsplit('/', 1)[1]}, topic {topic}")
    try:
        await asyncio.to_thread(migrate, "matching", database)
        say(f"1. publishing {args.experts:,} registry.member.registered events")
        seconds = await produce(
            endpoints.kafka_bootstrap, topic, args.experts, args.seed, args.workers
        )
        report["publish"] = {
            "events": args.experts,
            "seconds": round(seconds, 1),
            "events_per_second": round(args.experts / seconds),
        }
        report["load_average"]["after_publish"] = load_average()

        say("2. rebuilding the experts read model from the topic")
        service = bootstrap(
            MatchingSettings(
                database_url=asyncpg_url(database), environment="test", json_logs=False
            )
        )
        try:
            began = time.perf_counter()
            rebuilt = await rebuild(
                service.engine, bootstrap_servers=endpoints.kafka_bootstrap, topic_prefix=prefix
            )
            seconds = time.perf_counter() - began
        finally:
            await service.close()
        report["rebuild"] = {
            "events_read": rebuilt.events_read,
            "events_applied": rebuilt.events_applied,
            "skipped": rebuilt.skipped,
            "experts": rebuilt.experts,
            "seconds": round(seconds, 1),
            "events_per_second": round(rebuilt.events_read / seconds),
            "phases": {k: round(v, 1) for k, v in getattr(rebuilt, "phases", {}).items()},
        }
        report["load_average"]["after_rebuild"] = load_average()

        if not args.skip_ranking:
            needs = evaluation_needs()[: args.evaluation_needs] + generated_needs(
                args.generated_needs, args.seed
            )
            say(f"3. ranking {len(needs)} needs: fast top {TOP} x{args.repeats}, then exhaustive")
            report["ranking"] = await measure_ranking(database, needs, args.repeats)
    finally:
        if not args.keep:
            await drop_database(database)
            await delete_topics_with_prefix(endpoints.kafka_bootstrap, prefix)
        else:
            say(f"kept: database {database}, topic {topic}")
        report["load_average"]["end"] = load_average()
    return report


async def rank_kept(args: argparse.Namespace, report: dict[str, Any]) -> dict[str, Any]:
    """Step 3 alone, over the read model an earlier ``--keep`` run left (migrated to the
    current revision first: the ranking's indexes may have changed)."""
    database = args.database
    say(f"ranking over the kept database {database.rsplit('/', 1)[1]}")
    await asyncio.to_thread(migrate, "matching", database)
    service = bootstrap(
        MatchingSettings(database_url=asyncpg_url(database), environment="test", json_logs=False)
    )
    try:
        async with service.sessions() as session:
            count = (await session.execute(text("SELECT count(*) FROM experts"))).scalar_one()
    finally:
        await service.close()
    report["experts"] = count
    report["kept"] = database.rsplit("/", 1)[1]
    needs = evaluation_needs()[: args.evaluation_needs] + generated_needs(
        args.generated_needs, args.seed
    )
    say(f"3. ranking {len(needs)} needs: fast top {TOP} x{args.repeats}, then exhaustive")
    report["ranking"] = await measure_ranking(database, needs, args.repeats)
    report["load_average"]["end"] = load_average()
    return report


def _mark(ok: bool) -> str:
    return "" if ok else "  MISSED"


def print_report(report: dict[str, Any]) -> None:
    loads = report["load_average"]
    print(f"Matching at scale: {report['experts']:,} experts ({report['started_at']})")
    print(f"load average (1, 5, 15 min): start {loads['start']}")
    if "kept" in report:
        print(f"1-2. read model kept by an earlier run: database {report['kept']}")
    else:
        _print_build(report)
    if "ranking" not in report:
        print(f"3. ranking skipped (--skip-ranking); load average at end: {loads['end']}")
        return
    _print_ranking(report)


def _print_build(report: dict[str, Any]) -> None:
    loads = report["load_average"]
    p = report["publish"]
    print(
        f"1. published {p['events']:,} registry.member.registered events in {p['seconds']} s "
        f"({p['events_per_second']:,} events/s); load {loads['after_publish']}"
    )
    b = report["rebuild"]
    phases = ", ".join(f"{k} {v} s" for k, v in b["phases"].items())
    print(
        f"2. rebuild of the read model: {b['events_read']:,} events -> {b['experts']:,} experts "
        f"in {b['seconds']} s ({b['events_per_second']:,} events/s)"
        + (f" [{phases}]" if phases else "")
        + f"; skipped {b['skipped']}; load {loads['after_rebuild']}"
    )


def _print_ranking(report: dict[str, Any]) -> None:
    loads = report["load_average"]
    r = report["ranking"]
    print(
        f"3. fast top {TOP} over {report['experts']:,} experts, {r['needs']} needs x "
        f"{r['timed_runs'] // max(1, r['needs'])} runs: p50 {r['p50_ms']} ms, p95 "
        f"{r['p95_ms']} ms (target < {TARGET_P95_MS:.0f}){_mark(r['p95_ms'] < TARGET_P95_MS)}, "
        f"p99 {r['p99_ms']} ms, max {r['max_ms']} ms"
    )
    print(
        f"   overlap with the exhaustive top {TOP}: mean {r['overlap_mean']} (target >= "
        f"{TARGET_OVERLAP}){_mark(r['overlap_mean'] >= TARGET_OVERLAP)}, min "
        f"{r['overlap_min']}, needs below 1: {r['needs_below_full_overlap']}; plain set "
        f"overlap {r['plain_overlap_mean']}; fast scores differing from exhaustive: "
        f"{r['wrong_scores']}"
    )
    print(
        f"   exhaustive scoring (reference): p50 {r['exhaustive_p50_ms']} ms, p95 "
        f"{r['exhaustive_p95_ms']} ms"
    )
    print("   slowest needs (max of the timed runs):")
    for n in r["slowest"]:
        print(
            f"     need {n['need']:>3} occupations {n['occupations'] or '-'} skills "
            f"{n['skills']}: p50 {n['p50_ms']} ms, max {n['max_ms']} ms, exhaustive "
            f"{n['exhaustive_ms']} ms, overlap {n['overlap']}"
        )
    print(f"load average at end: {loads['end']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experts", type=int, default=1_000_000, help="events / experts")
    parser.add_argument(
        "--evaluation-needs", type=int, default=60, help="how many of the 60 evaluation needs"
    )
    parser.add_argument(
        "--generated-needs", type=int, default=40, help="needs drawn besides the 60 evaluation ones"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed fast runs per need")
    parser.add_argument("--workers", type=int, default=2, help="processes generating events")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--skip-ranking", action="store_true", help="only publish and rebuild (steps 1-2)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database and the topic")
    parser.add_argument(
        "--database",
        help="rank over the read model a --keep run left at this URL (skips steps 1-2)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, default=str, indent=2))
    else:
        print_report(report)


if __name__ == "__main__":
    main()
