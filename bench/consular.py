"""Consular benchmark (issue 17): two figures in one run.

    uv run python bench/consular.py                                  # defaults (500,000 queued)
    uv run python bench/consular.py --applications 200 --queue-applications 50000   # smoke
    uv run python bench/consular.py --only submission                # figure 1 alone
    uv run python bench/consular.py --only queue --keep              # figure 2, keep the DB
    uv run python bench/consular.py --json > result.json

1. **Applications submitted per second** through the real consular API process
   (``uvicorn --factory consular.entrypoints.http:app``, one process: token checks,
   policy, catalogue and form checks, eligibility against the applicants read model,
   history rows, the outbox event sealed with the applicant's data key fetched from a
   real registry API process, as deployed): each application is two requests, ``POST
   /applications`` (a consular-card draft) and ``POST /applications/{id}/transitions``
   (``submit``), by verified applicants seeded in the read model; between the two, the
   bench writes the three rows of the card's required documents (submit refuses a draft
   without them; uploads themselves are not measured here). The reference is a
   bare FastAPI + asyncpg process on the same database answering the same two requests
   (pydantic body, one ``INSERT`` of the same row shape into a copy of the
   ``applications`` table, then one ``UPDATE`` to ``submitted``): same client (httpx),
   same concurrency, rounds alternating which goes first, a warm-up round not counted.
   Printed: both rates (median of the rounds), the ratio, and each server process's
   CPU per application (steadier than rates on a shared machine).
2. **The officers' queue** over ``--queue-applications`` applications (default
   500,000) written with PostgreSQL COPY straight into ``applications`` (and the
   applicants read model), spread over the embassies (weighted by the diaspora each
   serves), every status of the state machine (most cases decided long ago), every
   service type and three years of dates, seeded (``--seed``); the table's secondary
   indexes are dropped during the load and rebuilt after, then ``ANALYZE``. Then
   ``--queries`` sequential ``GET /applications`` through the real API as officers
   of the embassies (weighted like the data) with the filters an officer uses (new
   work unassigned, my cases under review, overdue, a service type, everything):
   p50/p95/p99 overall and by filter, and the plan of each filter's two statements
   (the count and the page) for the largest embassy: the service's own ``search``
   run in-process with its SQL captured, then ``EXPLAIN (ANALYZE, BUFFERS)``.

Everything runs on this machine against the real PostgreSQL and Kafka (devstack, or
``DIASPORA_PG_URL`` / ``DIASPORA_KAFKA_BOOTSTRAP``). The load average is printed at the
start and end: other work on the machine moves the figures. Databases and topics are
dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import textwrap
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _bootstrap  # noqa: F401  (first: keeps bench/ off the import path)
import asyncpg
import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from consular.applications import service as applications_service
from consular.applications.tables import applications
from diaspora_devstack import stack
from diaspora_devstack.testing import (
    ServiceProcess,
    api_command,
    asyncpg_url,
    create_database,
    delete_topics_with_prefix,
    drop_database,
    free_port,
    migrate,
    serve_app,
    service_env,
    unique_name,
    wait_until,
)
from diaspora_identity.testing import DEV_SERVICE_CLIENTS, LocalIssuer, citizen, officer

# The diaspora each embassy serves, roughly (weights of the synthetic spread).
EMBASSY_WEIGHTS = {
    "fr-paris": 30,
    "de-berlin": 10,
    "us-washington": 9,
    "gh-accra": 8,
    "bj-cotonou": 8,
    "ci-abidjan": 7,
    "ng-abuja": 6,
    "be-brussels": 5,
    "ca-ottawa": 4,
    "gb-london": 3,
    "ch-geneva": 2,
    "sn-dakar": 2,
    "ga-libreville": 2,
    "ma-rabat": 1,
    "cn-beijing": 1,
    "za-pretoria": 1,
    "ae-abu-dhabi": 1,
}
TYPE_WEIGHTS = {
    "consular_card": 40,
    "passport_preparation": 18,
    "national_id_preparation": 12,
    "civil_status_transcription": 12,
    "laissez_passer": 8,
    "e_visa": 10,
}
TARGET_DAYS = {
    "consular_card": 15,
    "laissez_passer": 5,
    "passport_preparation": 30,
    "national_id_preparation": 30,
    "civil_status_transcription": 45,
    "e_visa": 3,
}
# Most cases were decided long ago; a live queue of a few percent.
STATUS_WEIGHTS = {
    "collected": 52,
    "issued": 5,
    "rejected": 7,
    "withdrawn": 4,
    "expired": 6,
    "approved": 2,
    "draft": 5,
    "submitted": 7,
    "under_review": 7,
    "information_requested": 3,
    "resubmitted": 2,
}
OPEN = ("submitted", "under_review", "resubmitted")
DECIDED = ("approved", "rejected", "issued", "collected")
OFFICERS_PER_EMBASSY = 6
CARD_ANSWERS = {
    "address_abroad": "12 rue des Lilas, 75011 Paris",
    "marital_status": "single",
    "emergency_contact_name": "Kodjo Mensah",
    "emergency_contact_phone": "+22890000000",
}
# The filters an officer uses (query parameters of GET /applications).
FILTERS: dict[str, list[tuple[str, str]]] = {
    "new work, unassigned": [
        ("status", "submitted"),
        ("status", "resubmitted"),
        ("assigned", "none"),
    ],
    "my cases under review": [("status", "under_review"), ("assigned", "me")],
    "overdue": [("overdue", "true")],
    "consular cards submitted": [("service_type", "consular_card"), ("status", "submitted")],
    "everything (no filter)": [],
}


def say(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


def load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "n/a"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _pid(service: ServiceProcess) -> int:
    return int(service.process.pid) if service.process is not None else 0


async def _answers(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            return (await client.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


# -- 1. submission throughput ------------------------------------------------------------

BARE_APP = textwrap.dedent(
    '''
    """The reference: FastAPI + asyncpg, one INSERT (draft) and one UPDATE (submit)."""
    import hashlib
    import json
    import sys
    import uuid
    from datetime import datetime, timedelta, timezone
    from typing import Any

    import asyncpg
    import uvicorn
    from fastapi import FastAPI, Request
    from pydantic import BaseModel

    DSN, PORT, VERSION_ID = sys.argv[1], int(sys.argv[2]), uuid.UUID(sys.argv[3])
    app = FastAPI()
    pool: Any = None


    class NewApplication(BaseModel):
        service_type: str
        answers: dict[str, Any] = {}


    class Transition(BaseModel):
        action: str
        reason: str | None = None


    @app.on_event("startup")
    async def start() -> None:
        global pool
        pool = await asyncpg.create_pool(DSN, min_size=5, max_size=5)


    @app.post("/applications", status_code=201)
    async def create(body: NewApplication, request: Request) -> dict[str, Any]:
        answers = json.dumps(body.answers)
        digest = hashlib.sha256(answers.encode()).hexdigest()
        row = await pool.fetchrow(
            "INSERT INTO bench_bare_applications (id, applicant_id, applicant_subject, "
            "service_type, service_version_id, catalogue_version, embassy_id, status, "
            "answers, request_digest) VALUES ($1, $2, $3, $4, $5, 1, 'fr-paris', 'draft', "
            "$6::jsonb, $7) RETURNING id, version",
            uuid.uuid4(), uuid.UUID(request.headers["x-member"]), request.headers["x-member"],
            body.service_type, VERSION_ID, answers, digest,
        )
        return {"id": str(row["id"]), "version": row["version"], "status": "draft"}


    @app.post("/applications/{application_id}/transitions")
    async def transition(application_id: uuid.UUID, body: Transition) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        row = await pool.fetchrow(
            "UPDATE bench_bare_applications SET status = 'submitted', version = version + 1, "
            "submitted_at = $2, due_at = $3, updated_at = $2 WHERE id = $1 "
            "RETURNING id, version, status",
            application_id, now, now + timedelta(days=15),
        )
        return {"id": str(row["id"]), "version": row["version"], "status": row["status"]}


    uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning", access_log=False)
    '''
)


async def _fire(
    url: str,
    headers: list[dict[str, str]],
    concurrency: int,
    prepare: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
) -> tuple[float, Counter[str]]:
    """Create and submit one application per entry of ``headers``; ``concurrency``
    applicants at a time, each on its own keep-alive connection. ``prepare``: what is done
    to a draft before its submission (consular: its required documents' rows)."""
    codes: Counter[str] = Counter()
    queue = list(range(len(headers)))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    body = {"service_type": "consular_card", "answers": CARD_ANSWERS}
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def worker() -> None:
            while queue:
                i = queue.pop()
                created = await client.post("/applications", json=body, headers=headers[i])
                codes[f"create {created.status_code}"] += 1
                if created.status_code != 201:
                    continue
                if prepare is not None:
                    await prepare(created.json())
                submitted = await client.post(
                    f"/applications/{created.json()['id']}/transitions",
                    json={"action": "submit"},
                    headers=headers[i],
                )
                codes[f"submit {submitted.status_code}"] += 1
                if submitted.status_code != 200 or submitted.json()["status"] != "submitted":
                    codes["not submitted"] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, codes


CARD_DOCUMENTS = ("identity_document", "photo", "proof_of_residence")


def documents_of(pool: Any) -> Callable[[dict[str, Any]], Awaitable[None]]:
    """Submit refuses an application without the catalogue's required documents: the rows
    an upload would have left (the bytes are not read by submit; uploads, with their
    checks in a forked process, are not what this bench measures)."""

    async def prepare(application: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        rows = []
        for kind in CARD_DOCUMENTS:
            document_id = uuid.uuid4()
            rows.append(
                (
                    document_id,
                    uuid.UUID(application["id"]),
                    uuid.UUID(application["applicant_id"]),
                    kind,
                    f"{kind}.pdf",
                    "application/pdf",
                    1024,
                    "0" * 64,
                    f"applications/{application['id']}/{document_id}",
                    "bench",
                    "applicant",
                    now,
                )
            )
        await pool.executemany(
            "INSERT INTO documents (id, application_id, member_id, kind, filename, "
            "content_type, size, sha256, storage_key, uploaded_by, uploaded_by_role, "
            "uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            rows,
        )

    return prepare


async def seed_applicants(database: str, member_ids: list[uuid.UUID], embassy: str) -> None:
    """Verified applicants in the read model (what the registry's events would have left)."""
    now = datetime.now(UTC)
    conn = await asyncpg.connect(database)
    try:
        await conn.copy_records_to_table(
            "applicants",
            records=[
                (
                    m,
                    "Akossiwa",
                    f"Mensah{i}",
                    f"a{i}@example.org",
                    "fr",
                    "FR",
                    embassy,
                    "in_person",
                    "document_in_person",
                    now,
                    embassy,
                    now,
                )
                for i, m in enumerate(member_ids)
            ],
            columns=[
                "member_id",
                "given_name",
                "family_name",
                "email",
                "preferred_language",
                "country_of_residence",
                "embassy_id",
                "identity_level",
                "identity_method",
                "identity_verified_at",
                "identity_embassy_id",
                "source_time",
            ],
        )
    finally:
        await conn.close()


async def bench_submission(
    *,
    database: str,
    registry_database: str,
    kafka: str,
    topic_prefix: str,
    issuer: LocalIssuer,
    count: int,
    rounds: int,
    concurrency: int,
    sealed: bool,
    logs: Path,
) -> dict[str, Any]:
    conn = await asyncpg.connect(database)
    try:
        await conn.execute("CREATE TABLE bench_bare_applications (LIKE applications INCLUDING ALL)")
        version_id = await conn.fetchval(
            "SELECT id FROM service_type_versions WHERE code = 'consular_card' AND version = 1"
        )
    finally:
        await conn.close()
    warm = min(50, count)
    members = [uuid.uuid4() for _ in range(warm + count * rounds)]
    await seed_applicants(database, members, "fr-paris")

    registry_port, consular_port, bare_port = free_port(), free_port(), free_port()
    registry_env = service_env(
        "REGISTRY",
        database_url=registry_database,
        kafka=kafka,
        topic_prefix=topic_prefix,
        issuer=issuer,
        extra={"LOG_LEVEL": "WARNING"},
    )
    consular_env = service_env(
        "CONSULAR",
        database_url=database,
        kafka=kafka,
        topic_prefix=topic_prefix,
        issuer=issuer,
        event_keys_from=f"http://127.0.0.1:{registry_port}",
        extra={
            "LOG_LEVEL": "WARNING",
            **({} if sealed else {"CONSULAR_EVENT_ENCRYPTION": "false"}),
        },
    )
    bare_file = logs / "bare_consular_app.py"
    bare_file.write_text(BARE_APP)
    processes = {
        "registry": ServiceProcess(
            "registry-api",
            api_command("registry", registry_port),
            registry_env,
            logs / "registry-api.log",
        ),
        "consular": ServiceProcess(
            "consular-api",
            api_command("consular", consular_port),
            consular_env,
            logs / "consular-api.log",
        ),
        "bare": ServiceProcess(
            "bare-api",
            [sys.executable, str(bare_file), database, str(bare_port), str(version_id)],
            {},
            logs / "bare-api.log",
        ),
    }
    urls = {
        "consular": f"http://127.0.0.1:{consular_port}",
        "bare": f"http://127.0.0.1:{bare_port}",
    }
    for process in processes.values():
        process.start()
    documents_pool = await asyncpg.create_pool(database, min_size=1, max_size=concurrency)
    try:
        for url in (
            f"http://127.0.0.1:{registry_port}/health/live",
            f"{urls['consular']}/health/live",
            f"{urls['bare']}/docs",
        ):
            await wait_until(lambda url=url: _answers(url), timeout=120, message=url)
        pids = {name: _pid(p) for name, p in processes.items()}
        rates: dict[str, list[float]] = {"consular": [], "bare": []}
        cpu: dict[str, list[float]] = {"consular": [], "bare": [], "registry": []}
        failures: dict[str, Counter[str]] = {"consular": Counter(), "bare": Counter()}
        start = 0
        for round_ in range(rounds + 1):  # round 0 warms both up, not counted
            n = warm if round_ == 0 else count
            batch = members[start : start + n]
            start += n
            tokens = [issuer.headers(citizen(f"bench-{m}", member_id=m)) for m in batch]
            bare_headers = [{"x-member": str(m)} for m in batch]
            order = ("consular", "bare") if round_ % 2 else ("bare", "consular")
            for name in order:
                before = {k: cpu_seconds(pid) for k, pid in pids.items()}
                elapsed, codes = await _fire(
                    urls[name],
                    tokens if name == "consular" else bare_headers,
                    concurrency,
                    documents_of(documents_pool) if name == "consular" else None,
                )
                used = {k: cpu_seconds(pid) - before[k] for k, pid in pids.items()}
                if round_:
                    rates[name].append(n / elapsed)
                    cpu[name].append(used[name] / n * 1000)
                    if name == "consular":
                        cpu["registry"].append(used["registry"] / n * 1000)
                    failures[name].update(
                        {c: k for c, k in codes.items() if c not in ("create 201", "submit 200")}
                    )
                say(
                    f"  submission round {round_} {name}: {n / elapsed:.1f} applications/s, "
                    f"server CPU {used[name] / n * 1000:.2f} ms each, {dict(codes)}"
                )
    finally:
        await documents_pool.close()
        for process in processes.values():
            process.stop()
    consular_rate = statistics.median(rates["consular"])
    bare_rate = statistics.median(rates["bare"])
    return {
        "applications_per_round": count,
        "rounds": rounds,
        "concurrency": concurrency,
        "events_sealed": sealed,
        "consular_per_second": round(consular_rate, 1),
        "bare_per_second": round(bare_rate, 1),
        "ratio": round(consular_rate / bare_rate, 3),
        "consular_cpu_ms": round(statistics.median(cpu["consular"]), 2),
        "registry_key_service_cpu_ms": round(statistics.median(cpu["registry"]), 2),
        "bare_cpu_ms": round(statistics.median(cpu["bare"]), 2),
        "failures": {k: dict(v) for k, v in failures.items()},
    }


# -- 2. the officers' queue --------------------------------------------------------------

APPLICATION_COLUMNS = (
    "id",
    "applicant_id",
    "applicant_subject",
    "service_type",
    "service_version_id",
    "catalogue_version",
    "embassy_id",
    "status",
    "answers",
    "version",
    "assigned_to",
    "created_at",
    "updated_at",
    "submitted_at",
    "due_at",
    "escalated_at",
    "decided_at",
    "reference",
)


def _weighted(weights: dict[str, int]) -> tuple[list[str], list[int]]:
    return list(weights), list(weights.values())


def generate_applications(
    count: int, seed: int, versions: dict[str, uuid.UUID], now: datetime
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """``count`` application rows and the applicants they name (a member applies for 1-3
    services over the years), seeded."""
    rnd = random.Random(seed)
    embassies, embassy_w = _weighted(EMBASSY_WEIGHTS)
    types, type_w = _weighted(TYPE_WEIGHTS)
    statuses, status_w = _weighted(STATUS_WEIGHTS)
    answers = {t: json.dumps({"note": t, **CARD_ANSWERS}) for t in TYPE_WEIGHTS}
    rows: list[tuple[Any, ...]] = []
    applicants: list[tuple[Any, ...]] = []
    members: dict[str, list[uuid.UUID]] = defaultdict(list)
    three_years = 3 * 365 * 86400
    embassy_of = rnd.choices(embassies, embassy_w, k=count)
    type_of = rnd.choices(types, type_w, k=count)
    status_of = rnd.choices(statuses, status_w, k=count)
    for i in range(count):
        embassy, kind, status = embassy_of[i], type_of[i], status_of[i]
        if kind == "e_visa":
            applicant_id = None
            subject = f"visitor-{i}"
            embassy = "tg-lome"
        else:
            pool = members[embassy]
            if pool and rnd.random() < 0.4:
                applicant_id = rnd.choice(pool)
            else:
                applicant_id = uuid.UUID(int=rnd.getrandbits(128), version=4)
                pool.append(applicant_id)
                applicants.append(
                    (
                        applicant_id,
                        "Kossi",
                        f"Agbeko{i}",
                        f"m{i}@example.org",
                        "fr",
                        embassy[:2].upper(),
                        embassy,
                        "in_person",
                        now,
                        now,
                    )
                )
            subject = f"citizen-{applicant_id}"
        # Open cases are recent (weeks); decided ones spread over three years.
        if status in OPEN or status in ("draft", "information_requested"):
            age = rnd.uniform(0, 70 * 86400)
        else:
            age = rnd.uniform(0, three_years)
        created = now - timedelta(seconds=age)
        submitted = due = decided = escalated = None
        reference = assigned = None
        if status not in ("draft",):
            submitted = created + timedelta(seconds=rnd.uniform(0, min(age, 5 * 86400)))
            due = submitted + timedelta(days=TARGET_DAYS[kind])
        if status == "withdrawn" and rnd.random() < 0.5:
            submitted = due = None
        if status in DECIDED:
            assert submitted is not None
            decided = submitted + timedelta(
                seconds=rnd.uniform(0, max(1.0, (now - submitted).total_seconds()))
            )
        if status in ("approved", "issued", "collected"):
            reference = f"{kind[:2].upper()}-{created.year}-{i:010X}"
        if status in OPEN and due is not None and due < now and rnd.random() < 0.7:
            escalated = due + timedelta(minutes=1)
        if status not in ("draft", "submitted", "withdrawn", "expired") or (
            status == "submitted" and rnd.random() < 0.3
        ):
            assigned = f"officer-{embassy}-{rnd.randrange(OFFICERS_PER_EMBASSY)}"
        rows.append(
            (
                uuid.UUID(int=rnd.getrandbits(128), version=4),
                applicant_id,
                subject,
                kind,
                versions[kind],
                1,
                embassy,
                status,
                answers[kind],
                rnd.randint(1, 8),
                assigned,
                created,
                decided or submitted or created,
                submitted,
                due,
                escalated,
                decided,
                reference,
            )
        )
    return rows, applicants


async def load_queue(database: str, count: int, seed: int) -> dict[str, Any]:
    conn = await asyncpg.connect(database)
    try:
        versions = {
            r["code"]: r["id"]
            for r in await conn.fetch("SELECT code, id FROM service_type_versions")
        }
        started = time.perf_counter()
        rows, applicants = await asyncio.to_thread(
            generate_applications, count, seed, versions, datetime.now(UTC)
        )
        generated = time.perf_counter() - started
        # Secondary indexes (not those of constraints) dropped during the load.
        indexes = await conn.fetch(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = "
            "'applications' AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
            "WHERE c.conname = i.indexname)"
        )
        for index in indexes:
            await conn.execute(f'DROP INDEX "{index["indexname"]}"')
        started = time.perf_counter()
        await conn.copy_records_to_table(
            "applicants",
            records=applicants,
            columns=[
                "member_id",
                "given_name",
                "family_name",
                "email",
                "preferred_language",
                "country_of_residence",
                "embassy_id",
                "identity_level",
                "identity_verified_at",
                "source_time",
            ],
        )
        for i in range(0, len(rows), 50_000):
            await conn.copy_records_to_table(
                "applications", records=rows[i : i + 50_000], columns=list(APPLICATION_COLUMNS)
            )
        copied = time.perf_counter() - started
        started = time.perf_counter()
        for index in indexes:
            await conn.execute(index["indexdef"])
        await conn.execute("ANALYZE applications")
        await conn.execute("ANALYZE applicants")
        indexed = time.perf_counter() - started
        spread = {
            r["embassy_id"]: r["n"]
            for r in await conn.fetch(
                "SELECT embassy_id, count(*) AS n FROM applications GROUP BY 1 ORDER BY 2 DESC"
            )
        }
        open_by_embassy = {
            r["embassy_id"]: r["n"]
            for r in await conn.fetch(
                "SELECT embassy_id, count(*) AS n FROM applications WHERE status = ANY($1) "
                "GROUP BY 1 ORDER BY 2 DESC",
                list(OPEN),
            )
        }
    finally:
        await conn.close()
    return {
        "applications": count,
        "applicants": len(applicants),
        "generate_seconds": round(generated, 1),
        "copy_seconds": round(copied, 1),
        "index_seconds": round(indexed, 1),
        "indexes_rebuilt": [i["indexname"] for i in indexes],
        "by_embassy": spread,
        "open_by_embassy": open_by_embassy,
    }


async def explain_queue(database: str, embassy: str) -> dict[str, list[str]]:
    """The plans of the service's own queue statements (``service.search``, run here with
    the officer's scope, ``embassy_id IN (their embassies)`` as the policy gives it),
    captured as sent and explained with their parameters."""
    engine = create_async_engine(asyncpg_url(database))
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    plans: dict[str, list[str]] = {}
    subject = f"officer-{embassy}-0"
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        for name, params in FILTERS.items():
            filters = applications_service.QueueFilters(
                status=tuple(v for k, v in params if k == "status"),
                service_type=next((v for k, v in params if k == "service_type"), None),
                assigned=next((v for k, v in params if k == "assigned"), None),
                overdue=True if ("overdue", "true") in params else None,
            )
            where = applications_service.visible(
                applications.c.embassy_id.in_([embassy]), None, subject
            )
            captured.clear()
            async with sessions() as session, session.begin():
                await applications_service.search(
                    session,
                    where,
                    filters,
                    caller=subject,
                    now=datetime.now(UTC),
                    limit=50,
                    offset=0,
                )
            statements = list(captured)
            lines: list[str] = []
            async with engine.connect() as conn:
                for statement, parameters in statements:
                    result = await conn.exec_driver_sql(
                        "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters
                    )
                    lines += [r[0] for r in result] + ["--"]
            plans[name] = lines
    finally:
        await engine.dispose()
    return plans


def plan_summary(lines: list[str]) -> str:
    """The plan's nodes (scans, sorts, limits) and execution time, on one line."""
    keep = []
    for line in lines:
        text = line.strip()
        if text == "--":
            keep.append("|")
        elif text.startswith("Execution Time"):
            keep.append(text.replace("Execution Time: ", ""))
        elif text.startswith("->") or ((keep == [] or keep[-1] == "|") and "actual" in text):
            keep.append(text.removeprefix("-> ").split(" (actual")[0].strip())
    return " > ".join(keep).replace(" > | > ", " | ").removesuffix(" > |")


async def bench_queue(
    *,
    database: str,
    kafka: str,
    topic_prefix: str,
    issuer: LocalIssuer,
    registry_url: str | None,
    queries: int,
    seed: int,
    by_embassy: dict[str, int],
    sealed: bool,
    logs: Path,
) -> dict[str, Any]:
    port = free_port()
    env = service_env(
        "CONSULAR",
        database_url=database,
        kafka=kafka,
        topic_prefix=topic_prefix,
        issuer=issuer,
        event_keys_from=registry_url,
        extra={
            "LOG_LEVEL": "WARNING",
            **({} if sealed and registry_url else {"CONSULAR_EVENT_ENCRYPTION": "false"}),
        },
    )
    api = ServiceProcess(
        "consular-api-queue", api_command("consular", port), env, logs / "consular-queue.log"
    )
    api.start()
    url = f"http://127.0.0.1:{port}"
    rnd = random.Random(seed + 1)
    embassies = [e for e in by_embassy if e != "tg-lome"]
    weights = [by_embassy[e] for e in embassies]
    names = list(FILTERS)
    times: dict[str, list[float]] = defaultdict(list)
    codes: Counter[int] = Counter()
    items = 0
    try:
        await wait_until(lambda: _answers(f"{url}/health/live"), timeout=120, message=url)
        headers = {e: issuer.headers(officer(e, subject=f"officer-{e}-0")) for e in by_embassy}
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            for i in range(queries + 20):  # the first 20 warm up, not counted
                embassy = rnd.choices(embassies, weights)[0]
                name = names[i % len(names)]
                started = time.perf_counter()
                response = await client.get(
                    "/applications",
                    params=[*FILTERS[name], ("limit", "50")],
                    headers=headers[embassy],
                )
                elapsed = (time.perf_counter() - started) * 1000
                if i >= 20:
                    times[name].append(elapsed)
                    codes[response.status_code] += 1
                    if response.status_code == 200:
                        items += len(response.json()["items"])
    finally:
        api.stop()
    every = [t for ts in times.values() for t in ts]
    return {
        "queries": queries,
        "p50_ms": round(percentile(every, 0.5), 1),
        "p95_ms": round(percentile(every, 0.95), 1),
        "p99_ms": round(percentile(every, 0.99), 1),
        "max_ms": round(max(every), 1),
        "by_filter": {
            name: {
                "n": len(ts),
                "p50_ms": round(percentile(ts, 0.5), 1),
                "p95_ms": round(percentile(ts, 0.95), 1),
            }
            for name, ts in times.items()
        },
        "statuses": dict(codes),
        "mean_items": round(items / max(1, sum(codes.values())), 1),
    }


# -- main ----------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "load_average_start": load_average(),
        "started": str(datetime.now(UTC)),
    }
    endpoints, _started = await asyncio.to_thread(stack.up)
    database = await create_database(endpoints.pg_url, "bench_consular")
    registry_database = await create_database(endpoints.pg_url, "bench_consular_registry")
    prefix = unique_name("bench_consular") + "."
    logs = Path(tempfile.mkdtemp(prefix="bench-consular-"))
    issuer_port = free_port()
    issuer = LocalIssuer(f"http://127.0.0.1:{issuer_port}/dev-idp", clients=DEV_SERVICE_CLIENTS)
    try:
        await asyncio.to_thread(migrate, "consular", database)
        await asyncio.to_thread(migrate, "registry", registry_database)
        async with serve_app(issuer.asgi_app(), port=issuer_port):
            if args.only in (None, "submission"):
                say("1. applications submitted per second (consular API vs bare)")
                report["submission"] = await bench_submission(
                    database=database,
                    registry_database=registry_database,
                    kafka=endpoints.kafka_bootstrap,
                    topic_prefix=prefix,
                    issuer=issuer,
                    count=args.applications,
                    rounds=args.rounds,
                    concurrency=args.concurrency,
                    sealed=not args.events_in_clear,
                    logs=logs,
                )
            if args.only in (None, "queue"):
                say(f"2. loading {args.queue_applications:,} applications with COPY")
                loaded = await load_queue(database, args.queue_applications, args.seed)
                report["load"] = loaded
                say("   queue queries through the API")
                report["queue"] = await bench_queue(
                    database=database,
                    kafka=endpoints.kafka_bootstrap,
                    topic_prefix=prefix,
                    issuer=issuer,
                    registry_url=None,
                    queries=args.queries,
                    seed=args.seed,
                    by_embassy=loaded["by_embassy"],
                    sealed=False,
                    logs=logs,
                )
                largest = next(iter(loaded["by_embassy"]))
                say(f"   EXPLAIN of the queue statements for {largest}")
                plans = await explain_queue(database, largest)
                report["queue"]["explained_embassy"] = largest
                report["queue"]["plans"] = plans
    finally:
        if not args.keep:
            await drop_database(database)
            await drop_database(registry_database)
            await delete_topics_with_prefix(endpoints.kafka_bootstrap, prefix)
        else:
            report["databases_kept"] = [database, registry_database]
        report["load_average_end"] = load_average()
        report["logs"] = str(logs)
    return report


def print_report(report: dict[str, Any], *, full_plans: bool) -> None:
    print(f"load average at start: {report['load_average_start']}")
    if "submission" in report:
        s = report["submission"]
        print(
            f"1. applications submitted (create + submit) over HTTP: consular "
            f"{s['consular_per_second']}/s, bare FastAPI + asyncpg {s['bare_per_second']}/s, "
            f"ratio {s['ratio']}; server CPU per application {s['consular_cpu_ms']} ms "
            f"(+ registry key service {s['registry_key_service_cpu_ms']} ms; bare "
            f"{s['bare_cpu_ms']} ms); events sealed: {s['events_sealed']}; "
            f"{s['applications_per_round']} per round, {s['rounds']} rounds, concurrency "
            f"{s['concurrency']}, failures {s['failures']}"
        )
    if "queue" in report:
        lo, q = report["load"], report["queue"]
        print(
            f"2. officer queue (GET /applications, limit 50) over {lo['applications']:,} "
            f"applications ({lo['applicants']:,} applicants): p50 {q['p50_ms']} ms, p95 "
            f"{q['p95_ms']} ms, p99 {q['p99_ms']} ms, max {q['max_ms']} ms; {q['queries']} "
            f"queries, statuses {q['statuses']}, {q['mean_items']} items per page on average"
        )
        for name, f in q["by_filter"].items():
            print(f"   {name:<28} p50 {f['p50_ms']:>7} ms  p95 {f['p95_ms']:>7} ms  (n={f['n']})")
        print(
            f"   (loaded with COPY: generated {lo['generate_seconds']} s, copied "
            f"{lo['copy_seconds']} s, indexes and ANALYZE {lo['index_seconds']} s; largest "
            f"embassies {dict(list(lo['by_embassy'].items())[:4])}; open cases "
            f"{dict(list(lo['open_by_embassy'].items())[:4])})"
        )
        print(f"   plans for {q['explained_embassy']} (count | page):")
        for name, lines in q["plans"].items():
            print(f"   - {name}: {plan_summary(lines)}")
            if full_plans:
                print(textwrap.indent("\n".join(lines), "       "))
    print(f"load average at end: {report['load_average_end']}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="See the module docstring (bench/consular.py) and bench/README.md for the method.",
    )
    parser.add_argument(
        "--applications", type=int, default=150, help="applications per round (default 150)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="counted rounds (default 2)")
    parser.add_argument("--concurrency", type=int, default=16, help="default 16")
    parser.add_argument(
        "--events-in-clear",
        action="store_true",
        help="turn crypto-shredding off in the consular API (default: sealed, as deployed)",
    )
    parser.add_argument(
        "--queue-applications",
        type=int,
        default=500_000,
        help="applications loaded for the queue query (default 500,000)",
    )
    parser.add_argument("--queries", type=int, default=200, help="queue queries (default 200)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--only", choices=("submission", "queue"), help="one figure alone")
    parser.add_argument("--full-plans", action="store_true", help="print the whole EXPLAINs")
    parser.add_argument("--keep", action="store_true", help="keep the databases and topics")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, default=str, indent=2))
    else:
        print_report(report, full_plans=args.full_plans)


if __name__ == "__main__":
    main()
