"""Alembic, driven from code: each service keeps its migrations in its package."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from diaspora_service.settings import ServiceSettings


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(migrations_dir: Path, database_url: str, revision: str = "heads") -> None:
    # "heads": parallel branches of one service's migrations all apply; a merge revision joins them.
    command.upgrade(alembic_config(migrations_dir, database_url), revision)


def migrate_service(
    migrations_dir: Path,
    *,
    owner_url: str,
    runtime_url: str,
    create_runtime_role: bool = False,
) -> str | None:
    """A service's ``*-migrate``: upgrade as the owner, then grant the runtime role
    (``runtime_url``'s user) what serving needs (:mod:`diaspora_service.db_roles`).

    Returns the runtime role, or None when both URLs name the same role (nothing to
    grant: the service then runs as the owner). ``create_runtime_role``: create it
    with the URL's password when missing (development and tests only)."""
    from diaspora_service.db_roles import grant_runtime_role, role_of

    upgrade(migrations_dir, owner_url)
    owner, _ = role_of(owner_url)
    role, password = role_of(runtime_url)
    if role == owner:
        return None
    asyncio.run(grant_runtime_role(owner_url, role, create=create_runtime_role, password=password))
    return role


def migrate_from_settings(migrations_dir: Path, settings: ServiceSettings) -> None:
    """``*-migrate`` from a service's settings (MIGRATION_DATABASE_URL the owner's)."""
    migrate_service(
        migrations_dir,
        owner_url=settings.async_migration_database_url,
        runtime_url=settings.async_database_url,
        create_runtime_role=settings.environment != "production",
    )


def run_env(target_metadata: MetaData) -> None:
    """Body of a service's alembic ``env.py``: online migrations over asyncpg."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None

    def do_run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run_async())
    else:  # pragma: no cover - alembic is always called outside a loop here
        raise RuntimeError("call migrations outside a running event loop")
