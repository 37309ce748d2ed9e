"""Returnees benchmark (issue 18): the case worker's dashboard over many cases and
referrals, and the observatory's aggregate queries on the same data.

    uv run python bench/returnees.py                                   # defaults (smoke size)
    uv run python bench/returnees.py --cases 200000 --referrals 1000000   # the issue's sizes
    uv run python bench/returnees.py --without-indexes                 # before 0007 (compare)
    uv run python bench/returnees.py --json > result.json

1. **Dashboard p50/p95/p99.** ``--cases`` cases and ``--referrals`` referrals are written
   with PostgreSQL COPY into a database migrated to head: case workers with a skewed load
   (worker *k* gets a share proportional to 1/(k+1): the busiest has several times the
   median), three years of opening dates, most cases closed, needs over the eight areas;
   referrals to partners also skewed, mostly closed, the open ones with deadlines around
   today and a few escalated. Then ``ANALYZE``. The dashboard of a case worker is what the
   API runs for its three calls, with the service's own query functions
   (``cases.service.search`` as ``GET /cases?assigned=me``, ``referrals.service.search``
   as ``GET /referrals?escalated=true&status=referred&status=acknowledged``, the cell's
   escalations, and as ``GET /referrals?case_id=`` for the first case of the page) run
   in-process on the service's engine: SQL and plans as deployed; HTTP, token checks and
   the audit rows are not in the figure. ``--queries`` dashboards for case workers drawn
   with the same skew; the plan of each statement (``EXPLAIN (ANALYZE, BUFFERS)``) for the
   busiest worker is printed. ``--without-indexes`` drops the indexes of revision
   ``0007_dashboard_indexes`` before measuring (the comparison).
2. **Observatory**: each of the five read models' queries, ``--observatory-rounds`` times
   (median, max): plain aggregate queries, no materialised view (docs/returnees.md).

The load average is printed at the start and end. The database is dropped unless
``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _bootstrap  # noqa: F401  (first: keeps bench/ off the import path)
import asyncpg
from sqlalchemy import event, true
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from diaspora_devstack import stack
from diaspora_devstack.testing import asyncpg_url, create_database, drop_database, migrate
from returnees.cases import service as cases_service
from returnees.observatory import service as observatory
from returnees.referrals import service as referrals_service

NEEDS = (
    "reception",
    "housing",
    "health",
    "psychosocial",
    "documents",
    "training",
    "employment",
    "business_start_up",
)
COUNTRIES = {"LY": 20, "DZ": 12, "NE": 10, "FR": 8, "LB": 8, "SA": 7, "QA": 5, "MA": 5, "DE": 3}
REASONS = {
    "expelled": 30,
    "assisted_voluntary": 30,
    "voluntary": 20,
    "end_of_contract": 10,
    "humanitarian": 7,
    "other": 3,
}
CASE_STATUSES = {
    "closed": 70,
    "in_plan": 12,
    "assessed": 8,
    "open": 6,
    "declared": 2,
    "cancelled": 2,
}
DASHBOARD_INDEXES = ("cases_worklist_idx", "referrals_escalated_open_idx")


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def seed(conn: asyncpg.Connection, args: argparse.Namespace) -> list[str]:
    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    workers = [f"cw-{k}" for k in range(args.workers)]
    worker_weights = [1 / (k + 1) for k in range(args.workers)]
    partners = [(uuid.uuid4(), f"partner-{k}") for k in range(args.partners)]
    partner_weights = [1 / (k + 1) ** 0.7 for k in range(args.partners)]
    await conn.copy_records_to_table(
        "partners",
        records=[(pid, org, org.upper(), "Contact", NEEDS) for pid, org in partners],
        columns=["id", "partner_org", "name", "contact_name", "services"],
    )
    case_ids: list[uuid.UUID] = []
    case_open: list[bool] = []
    records = []
    for _ in range(args.cases):
        opened = now - timedelta(days=rng.random() ** 1.5 * 3 * 365)
        status = weighted(rng, CASE_STATUSES)
        needs = [
            {
                "area": a,
                "priority": rng.choice(["high", "medium", "low"]),
                "met": rng.random() < 0.6,
            }
            for a in rng.sample(NEEDS, rng.randint(1, 4))
        ]
        cid = uuid.uuid4()
        case_ids.append(cid)
        case_open.append(status not in ("closed", "cancelled"))
        records.append(
            (
                cid,
                uuid.uuid4(),
                "case_worker",
                status,
                rng.choices(workers, weights=worker_weights)[0] if status != "declared" else None,
                "cw-0",
                opened,
                opened,
                (opened + timedelta(days=rng.randint(0, 20))).date(),
                weighted(rng, COUNTRIES),
                weighted(rng, REASONS),
                json.dumps(needs),
            )
        )
    await conn.copy_records_to_table(
        "cases",
        records=records,
        columns=[
            "id",
            "member_id",
            "origin",
            "status",
            "assigned_to",
            "opened_by",
            "opened_at",
            "updated_at",
            "return_date",
            "country_from",
            "reason",
            "needs",
        ],
    )
    records = []
    for i in range(args.referrals):
        # Cases get referrals with a skew (some many, most few); the last of a case may be open.
        k = min(int(rng.paretovariate(1.2)) - 1, len(case_ids) - 1)
        c = (i * 7919 + k) % len(case_ids)
        pid, org = rng.choices(partners, weights=partner_weights)[0]
        referred = now - timedelta(days=rng.random() ** 1.5 * 3 * 365)
        is_open = case_open[c] and rng.random() < 0.15
        status = (
            rng.choice(["referred", "acknowledged"])
            if is_open
            else rng.choices(["done", "refused", "cancelled"], weights=[80, 12, 8])[0]
        )
        if is_open:
            referred = now - timedelta(days=rng.randint(0, 40))
        ack = referred + timedelta(days=rng.expovariate(1 / 2.5)) if status != "referred" else None
        closed = (
            (ack or referred) + timedelta(days=rng.expovariate(1 / 20))
            if status in ("done", "refused", "cancelled")
            else None
        )
        ack_by, complete_by = referred + timedelta(days=3), referred + timedelta(days=30)
        escalated = ack_by if is_open and ack_by < now and rng.random() < 0.5 else None
        records.append(
            (
                uuid.uuid4(),
                case_ids[c],
                pid,
                org,
                # A distinct need per open referral of a case (the one-open rule).
                NEEDS[i % 8] if not is_open else f"{NEEDS[i % 8]}-{i}",
                "medium",
                "Golfe",
                "Maritime",
                status,
                "cw-0",
                referred,
                ack_by,
                complete_by,
                ack,
                closed,
                escalated,
            )
        )
        if len(records) >= 50_000:
            await _copy_referrals(conn, records)
            records = []
    await _copy_referrals(conn, records)
    # As autovacuum leaves a table in steady state (visibility map: index-only counts).
    await conn.execute("VACUUM ANALYZE")
    return rng.choices(workers, weights=worker_weights, k=args.queries)


async def _copy_referrals(conn: asyncpg.Connection, records: list[tuple[Any, ...]]) -> None:
    await conn.copy_records_to_table(
        "referrals",
        records=records,
        columns=[
            "id",
            "case_id",
            "partner_id",
            "partner_org",
            "need",
            "priority",
            "prefecture",
            "region",
            "status",
            "referred_by",
            "referred_at",
            "acknowledge_by",
            "complete_by",
            "acknowledged_at",
            "closed_at",
            "acknowledge_escalated_at",
        ],
    )


async def dashboard(sessions: Any, subject: str) -> None:
    async with sessions() as session, session.begin():
        page = await cases_service.search(session, true(), assigned_to=subject, limit=50)
        await referrals_service.search(
            session,
            true(),
            referrals_service.ReferralFilters(status=("referred", "acknowledged"), escalated=True),
            now=datetime.now(UTC),
            limit=50,
            offset=0,
        )
        if page:
            await referrals_service.search(
                session,
                true(),
                referrals_service.ReferralFilters(case_id=page[0]["id"]),
                now=datetime.now(UTC),
                limit=50,
                offset=0,
            )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "load_start": loadavg(),
        "cases": args.cases,
        "referrals": args.referrals,
    }
    endpoints, _started = await asyncio.to_thread(stack.up)
    database = await create_database(endpoints.pg_url, "bench_returnees")
    try:
        await asyncio.to_thread(migrate, "returnees", database)
        conn = await asyncpg.connect(database)
        try:
            t = time.perf_counter()
            subjects = await seed(conn, args)
            report["seed_seconds"] = round(time.perf_counter() - t, 1)
            if args.without_indexes:
                for name in DASHBOARD_INDEXES:
                    await conn.execute(f"DROP INDEX IF EXISTS {name}")
        finally:
            await conn.close()
        engine = create_async_engine(asyncpg_url(database), pool_size=2)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        try:
            for subject in subjects[:5]:  # warm-up
                await dashboard(sessions, subject)
            timings = []
            for subject in subjects:
                t = time.perf_counter()
                await dashboard(sessions, subject)
                timings.append((time.perf_counter() - t) * 1000)
            report["dashboard_ms"] = {
                "p50": round(statistics.median(timings), 2),
                "p95": round(pct(timings, 0.95), 2),
                "p99": round(pct(timings, 0.99), 2),
                "queries": len(timings),
            }
            report["plans"] = await plans(engine, sessions)
            report["observatory_ms"] = await observatory_times(sessions, args.observatory_rounds)
        finally:
            await engine.dispose()
    finally:
        if not args.keep:
            await drop_database(database)
        else:
            report["database"] = database
    report["load_end"] = loadavg()
    return report


async def plans(engine: Any, sessions: Any) -> list[list[str]]:
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        await dashboard(sessions, "cw-0")
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    out = []
    async with engine.connect() as conn:
        for statement, parameters in captured:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            result = await conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters
            )
            out.append([r[0] for r in result])
    return out


async def observatory_times(sessions: Any, rounds: int) -> dict[str, dict[str, float]]:
    out = {}
    for name in ("returns", "needs", "referral_times", "difficulty_reports", "watchlist_changes"):
        query = getattr(observatory, name)
        timings = []
        for _ in range(rounds):
            async with sessions() as session:
                t = time.perf_counter()
                await query(session)
                timings.append((time.perf_counter() - t) * 1000)
        out[name] = {"median": round(statistics.median(timings), 1), "max": round(max(timings), 1)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--referrals", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=40, help="case workers (skewed load)")
    parser.add_argument("--partners", type=int, default=60)
    parser.add_argument("--queries", type=int, default=300, help="dashboards measured")
    parser.add_argument("--observatory-rounds", type=int, default=5)
    parser.add_argument(
        "--without-indexes",
        action="store_true",
        help="drop 0007_dashboard_indexes' indexes before measuring",
    )
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        return
    print(f"load average at start {report['load_start']}, at end {report['load_end']}")
    print(
        f"{args.cases:,} cases, {args.referrals:,} referrals seeded in "
        f"{report['seed_seconds']} s"
        + (" (dashboard indexes dropped)" if args.without_indexes else "")
    )
    d = report["dashboard_ms"]
    print(
        f"dashboard ({d['queries']} case workers, skewed): p50 {d['p50']} ms, "
        f"p95 {d['p95']} ms, p99 {d['p99']} ms"
    )
    for lines in report["plans"]:
        print("\n".join("  " + line for line in lines))
        print("  --")
    for name, t in report["observatory_ms"].items():
        print(f"observatory {name}: median {t['median']} ms, max {t['max']} ms")


if __name__ == "__main__":
    main()
