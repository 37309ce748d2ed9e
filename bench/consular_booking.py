"""Consular booking throughput (issue 17, item 5): bookings per second on one hot slot and
on slots spread over the embassy's week, with a bare peer in the same run.

    uv run python bench/consular_booking.py                       # defaults, ~1-2 min
    uv run python bench/consular_booking.py --bookings 2000 --concurrency 50
    uv run python bench/consular_booking.py --json > result.json

Three ways of booking, each on one hot slot (every client after the same seat counter
row, its capacity large enough for all) and on spread slots (``--slots`` slots, taken
in turn):

1. ``api``: ``POST /appointments`` through the consular API (uvicorn in this process,
   citizen tokens verified, policy, the application locked, slot computed from the
   template, the seat taken, the appointment and its event written to the outbox).
2. ``use case``: ``consular.appointments.service.book`` on SQLAlchemy sessions, no HTTP.
3. ``bare``: plain asyncpg doing the same capacity check on tables of the same database
   (``INSERT ... ON CONFLICT DO NOTHING`` of the counter row, ``UPDATE ... SET booked =
   booked + 1 WHERE booked < capacity``, ``INSERT`` of the booking), one transaction
   each: the floor the database sets.

Ratios are against the bare peer of the same slot pattern. Each booking is for its own
application (an application holds one appointment), inserted beforehand with SQL. The
load average is printed at the start and the end: other work on the machine changes the
figures. Everything runs against the real PostgreSQL (devstack); the outbox is not
published (the relay's throughput is bench/skeleton.py's), and written in clear (sealing
needs the registry's key service; its cost is bench/crypto_shredding.py's).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import _bootstrap  # noqa: F401  (first: keeps bench/ off the import path)
import asyncpg
import httpx
from sqlalchemy import true

from consular.appointments import service as appointments
from consular.appointments.domain import slots_between
from consular.bootstrap import bootstrap
from consular.entrypoints.http import build_app
from consular.settings import ConsularSettings
from diaspora_devstack import stack
from diaspora_devstack.testing import (
    app_url,
    asyncpg_url,
    create_database,
    drop_database,
    free_port,
    migrate,
    serve_app,
)
from diaspora_identity.testing import LocalIssuer, citizen, officer

EMBASSY = "fr-paris"


def say(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


def load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "n/a"


def template(capacity: int) -> dict[str, Any]:
    every_day = [{"start": "08:00", "end": "18:00"}]
    return {
        "timezone": "Europe/Paris",
        "slot_minutes": 15,
        "capacity": capacity,
        "weekly_hours": {d: every_day for d in ("mon", "tue", "wed", "thu", "fri")},
        "closures": [],
        "valid_from": date.today().isoformat(),
        "horizon_days": 120,
    }


async def make_applications(pg: str, count: int) -> list[tuple[uuid.UUID, str]]:
    """``count`` submitted consular-card applications of the Paris embassy (id, subject)."""
    conn = await asyncpg.connect(pg)
    try:
        version = await conn.fetchrow(
            "SELECT id, version FROM service_type_versions WHERE code = 'consular_card' "
            "ORDER BY version DESC LIMIT 1"
        )
        assert version is not None
        rows = [
            (uuid.uuid4(), uuid.uuid4(), f"bench-{uuid.uuid4().hex[:12]}") for _ in range(count)
        ]
        await conn.copy_records_to_table(
            "applications",
            records=[
                (
                    app_id,
                    member,
                    subject,
                    "consular_card",
                    version["id"],
                    version["version"],
                    EMBASSY,
                    "submitted",
                )
                for app_id, member, subject in rows
            ],
            columns=[
                "id",
                "applicant_id",
                "applicant_subject",
                "service_type",
                "service_version_id",
                "catalogue_version",
                "embassy_id",
                "status",
            ],
        )
        return [(app_id, subject) for app_id, _, subject in rows]
    finally:
        await conn.close()


async def timed(
    count: int, concurrency: int, one: Callable[[int], Awaitable[bool]]
) -> dict[str, Any]:
    """Run ``one(i)`` for i < count, ``concurrency`` at a time; bookings per second."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    booked = 0

    async def worker() -> None:
        nonlocal booked
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if await one(i):
                booked += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    return {
        "bookings": booked,
        "seconds": round(seconds, 3),
        "per_second": round(count / seconds, 1),
    }


BARE_DDL = """
CREATE TABLE IF NOT EXISTS bench_seats (
    embassy_id text NOT NULL, slot_start timestamptz NOT NULL, capacity int NOT NULL,
    booked int NOT NULL DEFAULT 0, PRIMARY KEY (embassy_id, slot_start),
    CHECK (booked >= 0 AND booked <= capacity));
CREATE TABLE IF NOT EXISTS bench_bookings (
    id uuid PRIMARY KEY, application_id uuid NOT NULL UNIQUE, embassy_id text NOT NULL,
    slot_start timestamptz NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
"""


async def bare(
    pg: str, starts: list[datetime], count: int, concurrency: int, capacity: int
) -> dict[str, Any]:
    pool = await asyncpg.create_pool(pg, min_size=concurrency, max_size=concurrency)
    assert pool is not None
    try:
        async with pool.acquire() as conn:
            await conn.execute(BARE_DDL)
            await conn.execute("TRUNCATE bench_seats, bench_bookings")

        async def one(i: int) -> bool:
            start = starts[i % len(starts)]
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO bench_seats (embassy_id, slot_start, capacity) "
                    "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    EMBASSY,
                    start,
                    capacity,
                )
                taken = await conn.fetchval(
                    "UPDATE bench_seats SET booked = booked + 1 WHERE embassy_id = $1 "
                    "AND slot_start = $2 AND booked < $3 RETURNING booked",
                    EMBASSY,
                    start,
                    capacity,
                )
                if taken is None:
                    return False
                await conn.execute(
                    "INSERT INTO bench_bookings (id, application_id, embassy_id, slot_start) "
                    "VALUES ($1, $2, $3, $4)",
                    uuid.uuid4(),
                    uuid.uuid4(),
                    EMBASSY,
                    start,
                )
                return True

        return await timed(count, concurrency, one)
    finally:
        await pool.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "load_average_start": load_average(),
        "bookings": args.bookings,
        "concurrency": args.concurrency,
        "spread_slots": args.slots,
    }
    endpoints, _started = await asyncio.to_thread(stack.up)
    database = await create_database(endpoints.pg_url, "bench_consular")
    issuer_port = free_port()
    issuer = LocalIssuer(f"http://127.0.0.1:{issuer_port}/dev-idp")
    capacity = args.bookings
    try:
        await asyncio.to_thread(migrate, "consular", database)
        runtime_pg = app_url(database, "consular")
        settings = ConsularSettings(
            database_url=asyncpg_url(runtime_pg),
            kafka_bootstrap=endpoints.kafka_bootstrap,
            environment="test",
            json_logs=False,
            oidc_issuer=issuer.issuer,
            oidc_audience=issuer.audience,
        )
        # Events in clear: sealing their personal fields needs the registry's key service,
        # which this bench does not run (its cost is bench/crypto_shredding.py's).
        os.environ["CONSULAR_EVENT_ENCRYPTION"] = "false"
        service = bootstrap(settings)
        async with (
            serve_app(issuer.asgi_app(), port=issuer_port),
            serve_app(build_app(service)) as base_url,
        ):
            # The client's own request log is not the service's cost.
            logging.getLogger("httpx").setLevel(logging.WARNING)
            limits = httpx.Limits(max_connections=args.concurrency + 5)
            async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
                answer = await http.put(
                    f"/embassies/{EMBASSY}/slot-template",
                    json=template(capacity),
                    headers=issuer.headers(officer(EMBASSY)),
                )
            if answer.status_code != 200:
                raise SystemExit(f"template: {answer.status_code} {answer.text}")
            async with service.sessions() as session:
                row = await appointments.current_template(session, EMBASSY)
            assert row is not None
            tpl = appointments.template_of(row)
            first_day = datetime.now(UTC).date() + timedelta(days=2)
            every = [s.start for s in slots_between(tpl, first_day, first_day + timedelta(days=90))]
            n = args.slots
            if len(every) < 2 + 2 * n:
                raise SystemExit(f"only {len(every)} slots in the template")
            # (the API's slots, the use case's): each way its own seats; bare has its tables.
            patterns = {
                "hot": (every[:1], every[1:2]),
                "spread": (every[2 : 2 + n], every[2 + n : 2 + 2 * n]),
            }
            for name, (starts, own_starts) in patterns.items():
                say(f"{name}: {len(starts)} slot(s), {args.bookings} bookings")
                figures: dict[str, Any] = {}
                apps = await make_applications(database, args.bookings)
                tokens = [issuer.headers(citizen(subject=s)) for _, s in apps]
                http = httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits)

                async def by_api(
                    i: int,
                    apps: Any = apps,
                    tokens: Any = tokens,
                    starts: Any = starts,
                    http: Any = http,
                ) -> bool:
                    answer = await http.post(
                        "/appointments",
                        json={
                            "application_id": str(apps[i][0]),
                            "slot_start": starts[i % len(starts)].isoformat(),
                        },
                        headers=tokens[i],
                    )
                    if answer.status_code not in (201, 409):
                        raise RuntimeError(answer.text)
                    return answer.status_code == 201

                try:
                    figures["api"] = await timed(args.bookings, args.concurrency, by_api)
                finally:
                    await http.aclose()
                say("  api     ", figures["api"])

                apps = await make_applications(database, args.bookings)

                async def by_use_case(i: int, apps: Any = apps, starts: Any = own_starts) -> bool:
                    async with service.sessions() as session, session.begin():
                        application = await appointments.load_application(
                            session, apps[i][0], true()
                        )
                        assert application is not None
                        try:
                            await appointments.book(
                                session,
                                service.outbox,
                                application,
                                start=starts[i % len(starts)],
                                actor=apps[i][1],
                                actor_role="applicant",
                                now=datetime.now(UTC),
                            )
                        except appointments.SlotFull:
                            return False
                    return True

                # The service's pool holds 20 connections (10 + 10 overflow).
                figures["use_case"] = await timed(
                    args.bookings, min(args.concurrency, 20), by_use_case
                )
                say("  use case", figures["use_case"])
                figures["bare"] = await bare(
                    database, starts, args.bookings, args.concurrency, capacity
                )
                say("  bare    ", figures["bare"])
                for way in ("api", "use_case"):
                    figures[f"{way}_vs_bare"] = round(
                        figures[way]["per_second"] / figures["bare"]["per_second"], 3
                    )
                report[name] = figures
        await service.close()
    finally:
        if not args.keep:
            await drop_database(database)
        report["load_average_end"] = load_average()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bookings", type=int, default=600, help="per way and slot pattern")
    parser.add_argument("--concurrency", type=int, default=20, help="concurrent clients")
    parser.add_argument("--slots", type=int, default=200, help="slots of the spread pattern")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"Consular booking throughput ({args.bookings} bookings, {args.concurrency} clients)")
    print(f"load average: {report['load_average_start']} -> {report['load_average_end']}")
    for name in ("hot", "spread"):
        f = report[name]
        print(
            f"  {name:6} api {f['api']['per_second']:8.1f}/s   use case "
            f"{f['use_case']['per_second']:8.1f}/s   bare asyncpg {f['bare']['per_second']:8.1f}/s"
            f"   api/bare {f['api_vs_bare']:.2f}  use case/bare {f['use_case_vs_bare']:.2f}"
        )
        assert f["api"]["bookings"] == args.bookings, f
        assert f["use_case"]["bookings"] == args.bookings, f
        assert f["bare"]["bookings"] == args.bookings, f


if __name__ == "__main__":
    main()
