"""The runtime role's grants refuse what would defeat them (diaspora_service.db_roles)."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from diaspora_devstack.testing import asyncpg_url
from diaspora_service.db_roles import RuntimeRoleError, grant_runtime_role

pytestmark = pytest.mark.integration


async def test_a_missing_runtime_role_is_created_only_when_asked(empty_database: str) -> None:
    role = f"t_app_{uuid.uuid4().hex[:10]}"
    with pytest.raises(RuntimeRoleError, match="does not exist"):
        await grant_runtime_role(asyncpg_url(empty_database), role)
    owner = await asyncpg.connect(empty_database)
    try:
        await grant_runtime_role(asyncpg_url(empty_database), role, create=True, password="x")
        flags = await owner.fetchrow(
            "SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = $1", role
        )
        assert flags is not None
        assert (flags["rolcanlogin"], flags["rolsuper"]) == (True, False)
        assert await owner.fetchval(
            "SELECT has_database_privilege($1, current_database(), 'CONNECT')", role
        )
    finally:
        await owner.execute(
            f"REVOKE ALL ON DATABASE {empty_database.rsplit('/', 1)[1]} FROM {role}"
        )
        await owner.execute(f"DROP OWNED BY {role}")
        await owner.execute(f"DROP ROLE {role}")
        await owner.close()


async def test_a_superuser_or_the_owner_is_refused_as_runtime_role(empty_database: str) -> None:
    owner = await asyncpg.connect(empty_database)
    role = f"t_super_{uuid.uuid4().hex[:10]}"
    await owner.execute(f"CREATE ROLE {role} SUPERUSER NOLOGIN")
    try:
        with pytest.raises(RuntimeRoleError, match="superuser"):
            await grant_runtime_role(asyncpg_url(empty_database), role)
        me = await owner.fetchval("SELECT current_user")
        with pytest.raises(RuntimeRoleError, match="migrations' own role"):
            await grant_runtime_role(asyncpg_url(empty_database), me)
    finally:
        await owner.execute(f"DROP ROLE {role}")
        await owner.close()
