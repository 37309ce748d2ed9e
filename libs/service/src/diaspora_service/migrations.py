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


def create_plumbing_tables() -> None:
    """In a new service's first migration (``upgrade``): the tables every service has,
    as ``tables.py`` defines them (``outbox_table``, ``inbox_table``, ``audit_table(...,
    chained=True)``): ``audit_log`` (append-only, hash-chained: :mod:`audit_chain`),
    ``inbox`` and ``outbox`` with their indexes. Dead letters go to a Kafka topic (no
    table).

    Frozen: applied migrations call it, so what it creates never changes. A change to
    these tables is a new revision in each service, never an edit here. (The three
    older services created the same tables by hand in their 0001; that history stays.)"""
    import sqlalchemy as sa
    from alembic import op
    from sqlalchemy.dialects import postgresql

    from diaspora_service.audit_chain import append_only_ddl, chain_ddl

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("audit_id", sa.Uuid(), nullable=False),
        sa.Column(
            "occurred_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("actor_subject", sa.Text(), nullable=False),
        sa.Column("actor_roles", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("actor_client", sa.Text(), nullable=True),
        sa.Column("actor_is_service", sa.Boolean(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("fields", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("client_address", sa.Text(), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("trace_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("audit_id"),
    )
    op.create_index("audit_log_record_idx", "audit_log", ["record_id", "occurred_at"], unique=False)
    for statement in append_only_ddl("audit_log"):
        op.execute(statement)
    for statement in chain_ddl("audit_log"):
        op.execute(statement)
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="inbox_pkey"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("headers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("outbox_key_idx", "outbox", ["key"], unique=False)
    op.create_index(
        "outbox_unpublished_idx",
        "outbox",
        ["id"],
        unique=False,
        postgresql_where=sa.text("published_at IS NULL"),
    )


def drop_plumbing_tables() -> None:
    """The first migration's ``downgrade``: undoes :func:`create_plumbing_tables`."""
    from alembic import op

    from diaspora_service.audit_chain import drop_append_only_ddl, drop_chain_ddl

    op.drop_index("outbox_unpublished_idx", table_name="outbox")
    op.drop_index("outbox_key_idx", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("inbox")
    for statement in drop_chain_ddl("audit_log"):
        op.execute(statement)
    for statement in drop_append_only_ddl("audit_log"):
        op.execute(statement)
    op.drop_index("audit_log_record_idx", table_name="audit_log")
    op.drop_table("audit_log")
