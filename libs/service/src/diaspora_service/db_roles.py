"""The runtime database role: what a service's API, relay and worker connect as.

Migrations run as the owner of the service's tables (``<PREFIX>_MIGRATION_DATABASE_URL``);
the processes that serve connect as another role (``<PREFIX>_DATABASE_URL``), which is
neither the owner nor a superuser, so it cannot ``ALTER``, ``DROP``, disable a trigger or
``TRUNCATE``. After every upgrade, :func:`grant_runtime_role` (run by each service's
``*-migrate``) gives it, table by table of the schema as it now is:

- audit tables (those with the append-only trigger ``<table>_no_update_delete``):
  ``SELECT, INSERT`` only;
- the audit chain's head tables (``*_chain_head``) and ``alembic_version``: ``SELECT``;
- every other table: ``SELECT, INSERT, UPDATE, DELETE``; sequences: ``USAGE, SELECT``.

Run after each upgrade, it covers tables added by any later migration without each one
remembering to grant.
"""

from __future__ import annotations

import re

import structlog
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

log = structlog.get_logger(__name__)

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class RuntimeRoleError(RuntimeError):
    """The runtime role is missing or too powerful."""


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def role_of(database_url: str) -> tuple[str, str | None]:
    """The user name and password in a database URL."""
    url = make_url(database_url)
    if not url.username:
        raise RuntimeRoleError("the database URL names no user")
    return url.username, url.password if isinstance(url.password, str) else None


def with_role(database_url: str, role: str, password: str | None) -> str:
    """The same database URL, connecting as another role."""
    url = make_url(database_url).set(username=role, password=password)
    return url.render_as_string(hide_password=False)


async def _ensure_role(
    connection: AsyncConnection, role: str, *, create: bool, password: str | None
) -> None:
    exists = (
        await connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    ).first()
    if exists is not None:
        return
    if not create:
        raise RuntimeRoleError(
            f"the runtime database role {role!r} does not exist: create it "
            f"(CREATE ROLE {role} LOGIN PASSWORD '...'; docs/operations.md)"
        )
    try:
        async with connection.begin_nested():
            secret = "" if password is None else f" PASSWORD {_quote_literal(password)}"
            await connection.execute(text(f"CREATE ROLE {role} LOGIN{secret}"))
    except DBAPIError:
        # Another migrator (a parallel test worker) created it first: roles are per server.
        again = (
            await connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
        ).first()
        if again is None:
            raise


async def grant_runtime_role(
    owner_url: str, role: str, *, create: bool = False, password: str | None = None
) -> None:
    """Give ``role`` what a running service needs on the owner's schema, and no more.

    ``create``: create the role (LOGIN, with ``password`` if given) when missing
    (development and tests only; in production whoever runs the database server makes
    it)."""
    if not _NAME.match(role):
        raise RuntimeRoleError(f"not a plain role name: {role!r}")
    engine = create_async_engine(owner_url)
    try:
        async with engine.connect() as connection:
            await _ensure_role(connection, role, create=create, password=password)
            flags = (
                await connection.execute(
                    text(
                        "SELECT rolsuper OR rolbypassrls AS too_strong, "
                        "rolname = current_user AS same FROM pg_roles WHERE rolname = :r"
                    ),
                    {"r": role},
                )
            ).one()
            if flags.same:
                raise RuntimeRoleError(f"the runtime role {role!r} is the migrations' own role")
            if flags.too_strong:
                raise RuntimeRoleError(
                    f"the runtime role {role!r} is a superuser (or bypasses RLS)"
                )
            await _grant(connection, role)
            await connection.commit()
    finally:
        await engine.dispose()
    log.info("runtime_role_granted", role=role)


async def _grant(connection: AsyncConnection, role: str) -> None:
    schema, database = (
        await connection.execute(text("SELECT current_schema(), current_database()"))
    ).one()
    await connection.execute(text(f'GRANT CONNECT ON DATABASE "{database}" TO {role}'))
    await connection.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}'))
    relations = await connection.execute(
        text(
            """
            SELECT c.relname AS name, c.relkind AS kind,
                   EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid
                           AND t.tgname = c.relname || '_no_update_delete') AS append_only
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
             ORDER BY c.relname
            """
        )
    )
    for name, kind, append_only in relations.all():
        quoted = f'"{name}"'
        target = "SEQUENCE " if kind == "S" else ""
        await connection.execute(text(f"REVOKE ALL ON {target}{quoted} FROM {role}"))
        if kind == "S":
            rights = "USAGE, SELECT"
        elif append_only:
            rights = "SELECT, INSERT"
        elif name.endswith("_chain_head") or name == "alembic_version" or kind in ("v", "m"):
            rights = "SELECT"
        else:
            rights = "SELECT, INSERT, UPDATE, DELETE"
        await connection.execute(text(f"GRANT {rights} ON {target}{quoted} TO {role}"))


async def copy_grants(connection: AsyncConnection, source: str, target: str) -> None:
    """Give ``target`` the privileges ``source`` grants to other roles (a table swapped in
    for another keeps the runtime role's rights, in the swap's transaction)."""
    for name in (source, target):
        if not _NAME.match(name):
            raise ValueError(f"not a plain table name: {name!r}")
    grants = await connection.execute(
        text(
            """
            SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END,
                   a.privilege_type
              FROM pg_class c, aclexplode(c.relacl) a
              LEFT JOIN pg_roles r ON r.oid = a.grantee
             WHERE c.oid = to_regclass(:source) AND a.grantee <> c.relowner
            """
        ),
        {"source": source},
    )
    for grantee, privilege in grants.all():
        await connection.execute(text(f'GRANT {privilege} ON "{target}" TO {grantee}'))
