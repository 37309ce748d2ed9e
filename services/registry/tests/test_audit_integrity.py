"""The audit trail's integrity (issue 15): a hash chain that `diaspora-ops audit-verify`
walks, and a runtime database role that can only add entries.

Tampering is done the way an attacker holding the owner's rights would: as the owner
(here the superuser the migrations ran as), disabling the append-only trigger first.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from diaspora_devstack.testing import (
    app_url,
    asyncpg_url,
    create_database,
    drop_database,
    migrate,
)
from diaspora_service.audit_chain import GENESIS, canonical, entry_hash
from diaspora_service.ops import main as ops_main

pytestmark = pytest.mark.integration


def _entry(record_id: uuid.UUID, **overrides: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "audit_id": uuid.uuid4(),
        "occurred_at": datetime.now(UTC),
        "actor_subject": "officer-1",
        "actor_roles": ["embassy_officer"],
        "actor_client": "diaspora-web",
        "actor_is_service": False,
        "action": "read",
        "resource": "member",
        "record_id": record_id,
        "fields": ["email", "given_name"],
        "client_address": "203.0.113.7",
        "request_id": "req-1",
        "trace_id": None,
    }
    entry.update(overrides)
    return entry


INSERT = (
    "INSERT INTO audit_log (audit_id, occurred_at, actor_subject, actor_roles, actor_client, "
    "actor_is_service, action, resource, record_id, fields, client_address, request_id, "
    "trace_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
)


async def _insert(conn: asyncpg.Connection, entry: dict[str, object]) -> None:
    await conn.execute(INSERT, *entry.values())


def _verify(database_url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """`diaspora-ops audit-verify` as an operator runs it (its own process)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "diaspora_service.ops",
            "audit-verify",
            "--service",
            "registry",
            "--database-url",
            database_url,
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
async def owner(registry_database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(registry_database)
    yield conn
    await conn.close()


@pytest.fixture
async def runtime(registry_database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(app_url(registry_database, "registry"))
    yield conn
    await conn.close()


async def test_each_entry_commits_to_the_previous_one_whoever_inserts(
    runtime: asyncpg.Connection, owner: asyncpg.Connection
) -> None:
    member = uuid.uuid4()
    # Values that JSON escapes or that are absent: both sides must print them the same way.
    entries = [
        _entry(member),
        _entry(member, actor_subject='Ama "Kossi"\\ Mensah é 🇹🇬', trace_id="t" * 32),
        _entry(member, actor_client=None, client_address=None, request_id=None, fields=[]),
    ]
    for entry in entries:
        # A writer cannot choose its own place or hash in the chain: the trigger sets them.
        await _insert(runtime, entry)
    rows = await owner.fetch("SELECT * FROM audit_log ORDER BY chain_seq")
    assert [r["chain_seq"] for r in rows] == [1, 2, 3]
    previous = GENESIS
    for row in rows:
        assert bytes(row["chain_hash"]) == entry_hash(previous, dict(row))
        previous = bytes(row["chain_hash"])
    head = await owner.fetchrow("SELECT seq, hash FROM audit_log_chain_head")
    assert head is not None
    assert (head["seq"], bytes(head["hash"])) == (3, previous)
    # The database's canonical text is the verifier's, byte for byte.
    for row in rows:
        text = await owner.fetchval(
            "SELECT convert_to(jsonb_build_array($1::bigint, $2::text, "
            "(extract(epoch FROM $3::timestamptz) * 1000000)::bigint, $4::text, $5::text[], "
            "$6::text, $7::boolean, $8::text, $9::text, $10::text, $11::text[], $12::text, "
            "$13::text, $14::text)::text, 'UTF8')",
            row["chain_seq"],
            str(row["audit_id"]),
            row["occurred_at"],
            row["actor_subject"],
            row["actor_roles"],
            row["actor_client"],
            row["actor_is_service"],
            row["action"],
            row["resource"],
            str(row["record_id"]),
            row["fields"],
            row["client_address"],
            row["request_id"],
            row["trace_id"],
        )
        assert bytes(text) == canonical(dict(row))


async def test_concurrent_writers_keep_one_unbroken_chain(
    registry_database: str, owner: asyncpg.Connection
) -> None:
    pool = await asyncpg.create_pool(app_url(registry_database, "registry"), min_size=8, max_size=8)
    assert pool is not None
    try:

        async def writer(n: int) -> None:
            async with pool.acquire() as conn, conn.transaction():
                for _ in range(5):
                    await _insert(conn, _entry(uuid.uuid4(), request_id=f"w{n}"))

        await asyncio.gather(*(writer(n) for n in range(8)))
    finally:
        await pool.close()
    seqs = [r["chain_seq"] for r in await owner.fetch("SELECT chain_seq FROM audit_log")]
    assert sorted(seqs) == list(range(1, 41))
    result = _verify(registry_database)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "40 entries" in result.stdout


async def test_a_batch_in_one_statement_is_chained_row_after_row(
    runtime: asyncpg.Connection, owner: asyncpg.Connection, registry_database: str
) -> None:
    """A bulk import writes its entries in one INSERT ... SELECT: each row follows the
    one before it in the same statement, and the head moves once, to the last."""
    await _insert(runtime, _entry(uuid.uuid4()))
    async with runtime.transaction():
        await runtime.execute(
            "INSERT INTO audit_log (audit_id, actor_subject, actor_roles, actor_is_service, "
            "action, resource, record_id, fields) SELECT gen_random_uuid(), 'importer', "
            "'{embassy_officer}', false, 'imported', 'member', gen_random_uuid(), "
            "'{given_name}' FROM generate_series(1, 250)"
        )
        await _insert(runtime, _entry(uuid.uuid4()))
    head = await owner.fetchrow("SELECT seq FROM audit_log_chain_head")
    assert head is not None
    assert head["seq"] == 252
    result = _verify(registry_database)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "chain intact: 252 entries" in result.stdout


async def test_audit_verify_reads_the_database_url_as_the_service_does(
    runtime: asyncpg.Connection, registry_database: str
) -> None:
    """`postgres://` is a URL the services accept for their DATABASE_URL, and so the
    audit-verify that defaults to it."""
    await _insert(runtime, _entry(uuid.uuid4()))
    assert registry_database.startswith("postgresql://")
    result = _verify(registry_database.replace("postgresql://", "postgres://", 1))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "chain intact: 1 entries" in result.stdout


async def test_audit_verify_passes_an_untouched_chain_and_finds_a_tampered_entry(
    runtime: asyncpg.Connection, owner: asyncpg.Connection, registry_database: str
) -> None:
    member = uuid.uuid4()
    for n in range(5):
        await _insert(runtime, _entry(member, request_id=f"req-{n}"))
    clean = _verify(registry_database)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "chain intact: 5 entries" in clean.stdout

    # An attacker with the owner's rights hides an officer's read of the email address.
    target = await owner.fetchrow("SELECT id, chain_hash FROM audit_log WHERE chain_seq = 3")
    assert target is not None
    await owner.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete")
    await owner.execute("UPDATE audit_log SET fields = '{given_name}' WHERE chain_seq = 3")
    await owner.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update_delete")

    tampered = _verify(registry_database)
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    assert f"chain_seq 3 (id {target['id']})" in tampered.stdout
    assert f"found {bytes(target['chain_hash']).hex()}" in tampered.stdout
    assert "entry altered" in tampered.stdout


async def test_audit_verify_finds_deleted_and_truncated_entries_and_a_rewritten_chain(
    runtime: asyncpg.Connection, owner: asyncpg.Connection, registry_database: str
) -> None:
    for n in range(6):
        await _insert(runtime, _entry(uuid.uuid4(), request_id=f"req-{n}"))
    anchor_row = await owner.fetchrow(
        "SELECT chain_seq, chain_hash FROM audit_log WHERE chain_seq = 4"
    )
    assert anchor_row is not None
    anchor = f"4:{bytes(anchor_row['chain_hash']).hex()}"
    await owner.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete")
    await owner.execute("DELETE FROM audit_log WHERE chain_seq = 6")
    result = _verify(registry_database)
    assert result.returncode == 1
    assert "entries missing from the end" in result.stdout

    await owner.execute("DELETE FROM audit_log WHERE chain_seq = 2")
    result = _verify(registry_database)
    assert result.returncode == 1
    assert "entries missing (deleted?) at chain_seq 3" in result.stdout
    assert "expected chain_seq 2, found chain_seq 3" in result.stdout

    # Rewriting everything after the deletion (as someone who read this code would): the
    # chain is consistent again, but no longer holds the head recorded earlier.
    await owner.execute(
        """
        DO $$
        DECLARE e audit_log%ROWTYPE; previous bytea := decode(repeat('00', 32), 'hex');
                n bigint := 0;
        BEGIN
            FOR e IN SELECT * FROM audit_log ORDER BY chain_seq LOOP
                n := n + 1; e.chain_seq := n;
                previous := audit_log_entry_hash(previous, e);
                UPDATE audit_log SET chain_seq = n, chain_hash = previous WHERE id = e.id;
            END LOOP;
            UPDATE audit_log_chain_head SET seq = n, hash = previous;
        END $$
        """
    )
    await owner.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update_delete")
    assert _verify(registry_database).returncode == 0
    anchored = _verify(registry_database, "--anchor", anchor)
    assert anchored.returncode == 1
    assert "chain rewritten since the anchor was taken at chain_seq 4" in anchored.stdout


async def test_an_entry_slipped_in_with_the_chain_trigger_disabled_is_found(
    runtime: asyncpg.Connection, owner: asyncpg.Connection, registry_database: str
) -> None:
    await _insert(runtime, _entry(uuid.uuid4()))
    await owner.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_chain")
    await owner.execute("ALTER TABLE audit_log ALTER COLUMN chain_seq DROP NOT NULL")
    await owner.execute("ALTER TABLE audit_log ALTER COLUMN chain_hash DROP NOT NULL")
    await _insert(owner, _entry(uuid.uuid4()))
    result = _verify(registry_database)
    assert result.returncode == 1
    assert "entry outside the chain" in result.stdout


async def test_runtime_role_can_only_add_and_read_audit_entries(
    runtime: asyncpg.Connection,
) -> None:
    await _insert(runtime, _entry(uuid.uuid4()))
    assert await runtime.fetchval("SELECT count(*) FROM audit_log") == 1
    refused = [
        "UPDATE audit_log SET fields = '{}'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete",
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_chain",
        "DROP TRIGGER audit_log_no_update_delete ON audit_log",
        "DROP TRIGGER audit_log_chain ON audit_log",
        "DROP TABLE audit_log",
        "UPDATE audit_log_chain_head SET seq = 0",
        "SET session_replication_role = replica",
        "CREATE TABLE public.shadow (id int)",
    ]
    for statement in refused:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await runtime.execute(statement)
    # ...but the rest of the service's tables are its to change.
    await runtime.execute("DELETE FROM outbox WHERE false")
    assert (
        await runtime.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        is False
    )


async def test_existing_entries_are_chained_in_order_by_the_migration(infra: object) -> None:
    from diaspora_devstack import stack
    from diaspora_service.migrations import upgrade
    from registry.entrypoints.migrate import MIGRATIONS

    assert isinstance(infra, stack.Endpoints)
    url = await create_database(infra.pg_url, "chain_migration")
    try:
        await asyncio.to_thread(upgrade, MIGRATIONS, asyncpg_url(url), "0007")
        conn = await asyncpg.connect(url)
        try:
            for n in range(3):
                await _insert(conn, _entry(uuid.uuid4(), request_id=f"old-{n}"))
        finally:
            await conn.close()
        await asyncio.to_thread(migrate, "registry", url)
        result = _verify(url)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "chain intact: 3 entries" in result.stdout
        conn = await asyncpg.connect(url)
        try:
            order = await conn.fetch("SELECT request_id FROM audit_log ORDER BY chain_seq")
        finally:
            await conn.close()
        assert [r["request_id"] for r in order] == ["old-0", "old-1", "old-2"]
    finally:
        await drop_database(url)


def test_audit_verify_refuses_a_service_without_a_database_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("REGISTRY_DATABASE_URL", raising=False)
    with pytest.raises(SystemExit) as exit_:
        ops_main(["audit-verify", "--service", "registry"])
    assert "REGISTRY_DATABASE_URL" in str(exit_.value)


async def test_registry_migrate_grants_the_runtime_role_of_its_settings(
    empty_database: str,
) -> None:
    """`registry-migrate` as an operator runs it: the owner migrates, DATABASE_URL's role
    gets what serving needs (and is created, outside production, when missing)."""
    runtime_url = app_url(empty_database, "registry")
    env = {
        **os.environ,
        "REGISTRY_DATABASE_URL": asyncpg_url(runtime_url),
        "REGISTRY_MIGRATION_DATABASE_URL": asyncpg_url(empty_database),
        "REGISTRY_ENVIRONMENT": "test",
    }
    migrate_command = Path(sys.executable).parent / "registry-migrate"
    done = await asyncio.to_thread(
        subprocess.run, [str(migrate_command)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    owner = await asyncpg.connect(empty_database)
    runtime = await asyncpg.connect(runtime_url)
    try:
        owns = "SELECT tableowner = current_user FROM pg_tables WHERE tablename = 'members'"
        assert await owner.fetchval(owns) is True
        await _insert(runtime, _entry(uuid.uuid4()))
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await runtime.execute("UPDATE audit_log SET fields = '{}'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await runtime.execute("TRUNCATE members")
        assert await runtime.fetchval("SELECT count(*) FROM members") == 0
        assert await runtime.fetchval("SELECT count(*) FROM member_accesses") == 0
    finally:
        await runtime.close()
        await owner.close()
