"""The fast tier's database: migrated once, every test's writes rolled back."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from diaspora_devstack.fastdb import FastDatabases, RolledBack

WRITTEN = "fast-tier rollback probe"


async def _probes(tx: RolledBack) -> int:
    async with tx.sessions() as session:
        found = await session.execute(
            text("SELECT count(*) FROM outbox WHERE event_type = :t"), {"t": WRITTEN}
        )
    return int(found.scalar_one())


PROBE = text(
    "INSERT INTO outbox (event_id, topic, key, event_type, headers, value)"
    " VALUES (gen_random_uuid(), 't', 'k', :t, '{}', '\\\\x00')"
)


async def _write_probe(tx: RolledBack) -> None:
    # Committed as the code under test commits: a savepoint of the test's transaction.
    async with tx.sessions() as session, session.begin():
        await session.execute(PROBE, {"t": WRITTEN})


async def test_a_commit_in_one_test_is_gone_in_the_next(fastdb: FastDatabases) -> None:
    async with fastdb.rolled_back("matching") as first:
        await _write_probe(first)
        assert await _probes(first) == 1  # committed, seen by the next session
    async with fastdb.rolled_back("matching") as second:
        assert await _probes(second) == 0


async def test_the_runtime_role_is_the_one_connected(matching_tx: RolledBack) -> None:
    async with matching_tx.sessions() as session:
        user = (await session.execute(text("SELECT current_user"))).scalar_one()
    assert user == "matching_app"


async def test_a_rolled_back_session_leaves_the_others_work(matching_tx: RolledBack) -> None:
    await _write_probe(matching_tx)

    async def failing_handler() -> None:
        async with matching_tx.sessions() as session, session.begin():
            await session.execute(PROBE, {"t": WRITTEN})
            raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError, match="handler failed"):
        await failing_handler()
    assert await _probes(matching_tx) == 1  # its savepoint rolled back, the first row kept
