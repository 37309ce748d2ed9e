"""Bulk import throughput (issue 4): N rows of an embassy list through the real import runner.

A fresh registry database (migrations applied) on the devstack's PostgreSQL; a
CSV file of N valid, distinct people (French headers, ``;``, UTF-8) is checked
as ``POST /imports`` checks it, queued as a job of an officer of the Paris
embassy, and processed by :class:`registry.imports.runner.ImportRunner` in
batches, as in the service: validation with the registration's model, members,
history lines, ``registry.member.registered`` events and audit entries in the
outbox, duplicate detection per batch. Timed from the start of processing to
the job's end; the upload check (reading and counting the file) is reported
apart. The relay is not running (publishing is the outbox relay's benchmark).

Target: 100,000 rows at >= 5,000 rows/s.

    uv run python bench/registry_import.py                 # 100,000 rows
    uv run python bench/registry_import.py --rows 20000 --batch-size 2000 --json

``measure_import(rows, ...)`` is what bench/registry.py calls (load this file by path).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import logging
import random
import resource
import sys
import time
from datetime import date, timedelta
from typing import Any

import _bootstrap  # noqa: F401  (keeps bench/ off sys.path: see bench/_bootstrap.py)
from sqlalchemy import func, select

from diaspora_devstack import stack
from diaspora_devstack.testing import asyncpg_url, create_database, drop_database, migrate
from diaspora_identity.principal import Principal, Role
from registry.bootstrap import bootstrap
from registry.imports.jobs import create_job, inspect_file
from registry.imports.runner import ImportRunner
from registry.imports.settings import ImportSettings
from registry.imports.tables import import_jobs
from registry.members.tables import members
from registry.settings import RegistrySettings
from registry.tables import outbox

TARGET_ROWS_PER_SECOND = 5_000
SYLLABLES: tuple[str, ...] = (
    *("ko", "da", "mé", "si", "lo", "ba", "fi", "nu", "ra", "té", "vo", "gu", "zo", "ki"),
    *("ma", "sa", "yé", "wo", "ni", "de", "hu", "la", "tsi", "ga", "bè", "no", "xo"),
)


def embassy_list(rows: int, *, seed: int = 7) -> bytes:
    """A CSV of ``rows`` distinct people living in France or Spain (Paris embassy)."""
    rnd = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(["Nom", "Prénom", "Date de naissance", "Pays", "Téléphone", "Courriel"])
    first = date(1940, 1, 1)
    for n in range(rows):
        family = "".join(rnd.choice(SYLLABLES) for _ in range(rnd.randint(2, 4))).capitalize()
        given = "".join(rnd.choice(SYLLABLES) for _ in range(rnd.randint(2, 3))).capitalize()
        birth = first + timedelta(days=rnd.randrange(25_000))
        france = n % 4 != 0
        phone = f"+33 6 {10_000_000 + n:08d}" if france else f"+34 6{10_000_000 + n:08d}"
        writer.writerow(
            [
                family,
                given,
                birth.strftime("%d/%m/%Y"),
                "FR" if france else "ES",
                phone,
                f"m{n}@example.org",
            ]
        )
    return out.getvalue().encode()


async def measure_import(
    rows: int = 100_000, *, batch_size: int = 1_000, mode: str = "partial"
) -> dict[str, Any]:
    """Import ``rows`` rows into a fresh database; returns the figures (rows per second...)."""
    endpoints, _started = await asyncio.to_thread(stack.up)
    database = await create_database(endpoints.pg_url, "bench_import")
    try:
        await asyncio.to_thread(migrate, "registry", database)
        registry = bootstrap(
            RegistrySettings(
                database_url=asyncpg_url(database),
                kafka_bootstrap=endpoints.kafka_bootstrap,
                environment="test",
                json_logs=False,
            )
        )
        try:
            content = embassy_list(rows)
            started = time.perf_counter()
            counted = await asyncio.to_thread(
                inspect_file, content, "bench.csv", max_rows=max(rows, 1)
            )
            checked = time.perf_counter() - started
            officer = Principal(
                subject="bench-officer",
                roles=frozenset({Role.EMBASSY_OFFICER}),
                embassies=frozenset({"fr-paris"}),
            )
            decision = registry.identity.policy.decide(officer, "member_import", "create")
            job, _ = await create_job(
                sessions=registry.sessions,
                decision=decision,
                counted=counted,
                filename="bench.csv",
                mode=mode,  # type: ignore[arg-type]
                batch_size=batch_size,
                consent_method="signed_form",
                consent_reference=None,
                idempotency_key=None,
            )
            runner = ImportRunner(registry, ImportSettings(runner=False))
            started, cpu = time.perf_counter(), time.process_time() + _children_cpu()
            await runner.process(job["id"])
            elapsed = time.perf_counter() - started
            cpu = time.process_time() + _children_cpu() - cpu
            async with registry.sessions() as session:
                done = (
                    await session.execute(select(import_jobs).where(import_jobs.c.id == job["id"]))
                ).one()
                stored = (
                    await session.execute(select(func.count()).select_from(members))
                ).scalar_one()
                events = (
                    await session.execute(select(func.count()).select_from(outbox))
                ).scalar_one()
        finally:
            await registry.close()
    finally:
        await drop_database(database)
    rate = rows / elapsed if elapsed else 0.0
    return {
        "rows": rows,
        "batch_size": batch_size,
        "mode": mode,
        "status": done.status,
        "accepted": done.accepted,
        "duplicates": done.duplicates,
        "rejected": done.rejected,
        "members_stored": int(stored),
        "outbox_rows": int(events),
        "upload_check_seconds": round(checked, 3),
        "import_seconds": round(elapsed, 3),
        "rows_per_second": round(rate),
        # CPU of this process and of the validation worker it forks and waits for (not
        # PostgreSQL's) per row:
        # steadier than the rate on a shared machine.
        "cpu_us_per_row": round(cpu / rows * 1e6) if rows else 0,
        "target_rows_per_second": TARGET_ROWS_PER_SECOND,
        "met": rate >= TARGET_ROWS_PER_SECOND and done.accepted + done.duplicates == rows,
    }


def _children_cpu() -> float:
    """CPU seconds of the ended child processes waited for (the import's validation worker)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    result = asyncio.run(measure_import(args.rows, batch_size=args.batch_size))
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return
    print(
        f"import of {result['rows']} rows (batches of {result['batch_size']}): "
        f"{result['import_seconds']} s, {result['rows_per_second']} rows/s "
        f"(target >= {TARGET_ROWS_PER_SECOND}: {'met' if result['met'] else 'MISSED'}); "
        f"importer CPU {result['cpu_us_per_row']} us/row; "
        f"upload check {result['upload_check_seconds']} s; "
        f"{result['accepted']} accepted, {result['duplicates']} flagged, "
        f"{result['rejected']} rejected; {result['outbox_rows']} outbox rows"
    )


if __name__ == "__main__":
    main()
