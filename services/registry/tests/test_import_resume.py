"""An import survives the crash of the process running it: kill -9 mid-import, restart,
every row ends up registered exactly once."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from diaspora_devstack.testing import (
    ServiceProcess,
    free_port,
    service_env,
    wait_until,
)
from diaspora_identity.testing import LocalIssuer, officer
from registry.imports.tables import import_errors
from registry.members.tables import members
from registry.resources import Registry
from registry.tables import outbox

from .data.embassy_lists import HEADER_FR, Lists, build_rows, csv_bytes, expected

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def api_process(
    database: str, kafka: str, prefix: str, issuer: str, port: int, log: Path
) -> ServiceProcess:
    env = service_env(
        "REGISTRY",
        database_url=database,
        kafka=kafka,
        topic_prefix=prefix,
        extra={
            "REGISTRY_OIDC_ISSUER": issuer,
            "REGISTRY_OIDC_JWKS_MIN_REFRESH_SECONDS": "0",
            "REGISTRY_IMPORT_POLL_SECONDS": "0.2",
            "REGISTRY_JSON_LOGS": "false",
        },
    )
    command = [sys.executable, "-m", "uvicorn", "--factory", "registry.entrypoints.http:app"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    return ServiceProcess("registry-api", command, env, log)


async def test_killed_mid_import_the_runner_resumes_without_losing_or_repeating_a_row(
    registry_database: str,
    registry: Registry,
    kafka_bootstrap: str,
    topic_prefix: str,
    identity_provider: LocalIssuer,
    test_logs: Path,
) -> None:
    lists = Lists(seed=6, phone_base=60_000_000)
    rows = build_rows(lists, rows=9_000, header=HEADER_FR, existing=[], ewe=True)
    content = csv_bytes(HEADER_FR, rows, encoding="utf-8", delimiter=";", bom=False)
    want = expected(rows)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    headers = identity_provider.headers(officer("fr-paris"))
    first = api_process(
        registry_database,
        kafka_bootstrap,
        topic_prefix,
        identity_provider.issuer,
        port,
        test_logs / "api-1.log",
    ).start()
    second: ServiceProcess | None = None
    try:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:

            async def up() -> bool:
                try:
                    return (await http.get("/health/live")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(up, timeout=60, message="the API to start")
            job = (
                await http.post(
                    "/imports",
                    files={"file": ("big.csv", content)},
                    data={"mode": "partial", "consent_method": "signed_form", "batch_size": "100"},
                )
            ).json()

            async def started() -> bool:
                state = (await http.get(f"/imports/{job['id']}")).json()
                return bool(state["processed_rows"] > 0)

            await wait_until(started, timeout=60, interval=0.02, message="a first batch")
            first.kill()
            async with registry.sessions() as session:
                at_crash = (
                    await session.execute(select(func.count()).select_from(members))
                ).scalar_one()
            assert 0 < at_crash < want["accepted"] + want["duplicates"], first.log_tail()

            second = api_process(
                registry_database,
                kafka_bootstrap,
                topic_prefix,
                identity_provider.issuer,
                port,
                test_logs / "api-2.log",
            ).start()
            await wait_until(up, timeout=60, message="the API to restart")
            state: dict[str, object] = {}

            async def done() -> bool:
                state.update((await http.get(f"/imports/{job['id']}")).json())
                return state["status"] == "done"

            await wait_until(done, timeout=240, interval=0.2, message="the import to finish")
            assert {k: state[k] for k in want} == want
    finally:
        first.kill()
        if second is not None:
            second.stop()

    async with registry.sessions() as session:
        stored = (await session.execute(select(func.count()).select_from(members))).scalar_one()
        distinct_emails = (
            await session.execute(select(func.count(func.distinct(members.c.email))))
        ).scalar_one()
        events = (
            await session.execute(
                select(func.count())
                .select_from(outbox)
                .where(outbox.c.event_type == "registry.member.registered")
            )
        ).scalar_one()
        error_rows = (
            (await session.execute(select(import_errors.c.row_number).order_by(import_errors.c.id)))
            .scalars()
            .all()
        )
    assert stored == want["accepted"] + want["duplicates"]
    assert distinct_emails == stored  # no row imported twice
    assert events == stored
    assert len(error_rows) == len(set(error_rows)) == want["rejected"]
