"""Wait until a service's database schema has reached its migrations' head.

The init container of every Deployment of a service (API, relay, worker) runs it, so
that the pods of a new release start only once the migration Job has brought the
database up to date; the Job and the Deployments can then be applied together:

    python /scripts/wait_for_schema.py registry          # reads REGISTRY_DATABASE_URL

Ready when the database's Alembic revisions are this code's heads, or when they
include a revision this code does not know (a newer release migrated already:
migrations are additive, so an older release keeps working on the newer schema,
which is what a rollback needs). Exits 0 when ready, 1 after --timeout seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
import time

import asyncpg
from alembic.script import ScriptDirectory

from diaspora_service.migrations import alembic_config


def code_revisions(service: str) -> tuple[set[str], set[str]]:
    """(heads, every revision) of the migrations shipped with ``service``."""
    migrate = importlib.import_module(f"{service}.entrypoints.migrate")
    script = ScriptDirectory.from_config(alembic_config(migrate.MIGRATIONS, "postgresql://"))
    every = {revision.revision for revision in script.walk_revisions()}
    return set(script.get_heads()), every


def libpq_url(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


async def database_revisions(url: str) -> set[str]:
    conn = await asyncpg.connect(libpq_url(url), timeout=5)
    try:
        if not await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL"):
            return set()
        return {row[0] for row in await conn.fetch("SELECT version_num FROM alembic_version")}
    finally:
        await conn.close()


def is_ready(current: set[str], heads: set[str], known: set[str]) -> bool:
    return current == heads or bool(current - known)


def log(message: str) -> None:
    print(f"wait_for_schema: {message}", file=sys.stderr, flush=True)


async def wait(service: str, timeout: float, interval: float) -> bool:
    url = os.environ[f"{service.upper()}_DATABASE_URL"]
    heads, known = code_revisions(service)
    deadline = time.monotonic() + timeout
    while True:
        try:
            current: set[str] | None = await database_revisions(url)
        except Exception as error:  # database not reachable yet: keep waiting
            current = None
            log(f"{service}: database not reachable ({type(error).__name__}: {error})")
        if current is not None:
            if is_ready(current, heads, known):
                log(f"{service}: schema ready at {sorted(current)}")
                return True
            log(f"{service}: schema at {sorted(current) or 'nothing'}, waiting for {sorted(heads)}")
        if time.monotonic() >= deadline:
            log(f"{service}: gave up after {timeout:.0f}s")
            return False
        await asyncio.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", help="service package: registry, notifications, ...")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--interval", type=float, default=3.0)
    args = parser.parse_args(argv)
    return 0 if asyncio.run(wait(args.service, args.timeout, args.interval)) else 1


if __name__ == "__main__":
    sys.exit(main())
