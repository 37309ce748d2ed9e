"""A hash chain over an append-only audit table, and its verification (diaspora-ops audit-verify).

Each entry commits to the one before it::

    chain_hash(n) = SHA-256(chain_hash(n-1) || canonical(entry n)), chain_hash(0) = 32 zero bytes

where ``canonical`` is the UTF-8 text of a JSON array of the entry's sequence number and
its columns in a fixed order (:data:`CHAINED_COLUMNS`; timestamps as microseconds since
the epoch, ids as text), exactly as PostgreSQL prints ``jsonb`` (``", "`` between items).

The database computes it, whoever inserts (an API's audit trail, a bulk import, a
hand-written ``INSERT`` or ``COPY``): per statement, a trigger takes the one row of
``<table>_chain_head`` ``FOR UPDATE`` (appends are serialised until the inserting
transaction ends: a row lock, no table lock; other writers wait only for the time between
their audit insert and their commit); per row, a ``BEFORE INSERT`` trigger sets
``chain_seq`` and ``chain_hash`` (whatever the writer sent) from the head or the row the
statement added before; after the statement, the head moves to its last entry (one write
per statement, so a batch of a thousand entries costs one head update). The functions are
``SECURITY DEFINER`` (the table owner's), so the runtime role needs no right on the head
table and cannot forge it.

What it detects (:func:`verify_chain`, independent of the database's functions: the
hashes are recomputed here): a changed entry, a deleted one (a gap in ``chain_seq``),
entries removed from the end (the head says more), an entry inserted with the trigger
disabled (no ``chain_seq``). What it cannot detect alone: someone with the owner's rights
who rewrites every entry after the one they changed and the head. Against that, keep the
head printed by ``audit-verify`` somewhere they cannot write (a ticket, a signed log) and
pass it back later as ``--anchor SEQ:HASH`` (docs/security.md).

Adding the chain to a service's audit table: one migration whose ``upgrade`` runs
``for s in chain_ddl("audit_log"): op.execute(s)`` (existing rows are chained in ``id``
order) and whose ``downgrade`` runs :func:`drop_chain_ddl`; the table definition takes the
two columns from :func:`chain_columns` (``diaspora_identity.audit.audit_table`` does).
"""

# SQL is built from table and schema names only, each checked by _check_name first.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Column, LargeBinary, RowMapping, text
from sqlalchemy.ext.asyncio import AsyncConnection

GENESIS = bytes(32)
# The columns every audit entry commits to, in this order (diaspora_identity.audit.audit_table).
CHAINED_COLUMNS: tuple[str, ...] = (
    "audit_id",
    "occurred_at",
    "actor_subject",
    "actor_roles",
    "actor_client",
    "actor_is_service",
    "action",
    "resource",
    "record_id",
    "fields",
    "client_address",
    "request_id",
    "trace_id",
)
# Columns whose SQL value is turned into text (uuid) or microseconds (timestamptz) first.
_AS_TEXT = {"audit_id", "record_id"}
_AS_MICROSECONDS = {"occurred_at"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"not a plain SQL name: {name!r}")
    return name


def chain_columns() -> list[Column[Any]]:
    """The two chain columns, for a table definition (filled by the trigger)."""
    return [
        Column("chain_seq", BigInteger, nullable=False, unique=True),
        Column("chain_hash", LargeBinary, nullable=False),
    ]


def _sql_value(column: str, row: str) -> str:
    if column in _AS_TEXT:
        return f"{row}.{column}::text"
    if column in _AS_MICROSECONDS:
        return f"(extract(epoch FROM {row}.{column}) * 1000000)::bigint"
    return f"{row}.{column}"


def chain_ddl(table: str = "audit_log", *, schema: str = "public") -> list[str]:
    """SQL adding the hash chain to an audit table (for a migration's ``op.execute``).

    Existing entries are chained in ``id`` order (the append-only trigger is disabled for
    that one ``UPDATE`` pass, by the owner running the migration)."""
    table, schema = _check_name(table), _check_name(schema)
    qualified = f"{schema}.{table}"
    head = f"{schema}.{table}_chain_head"
    entry_hash = f"{schema}.{table}_entry_hash"
    values = ", ".join(["e.chain_seq", *(_sql_value(c, "e") for c in CHAINED_COLUMNS)])
    return [
        f"ALTER TABLE {qualified} ADD COLUMN chain_seq bigint, ADD COLUMN chain_hash bytea",
        f"""
        CREATE TABLE {head} (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            seq bigint NOT NULL,
            hash bytea NOT NULL
        )
        """,
        f"INSERT INTO {head} (seq, hash) VALUES (0, '\\x{GENESIS.hex()}'::bytea)",
        f"REVOKE ALL ON {head} FROM PUBLIC",
        f"""
        CREATE FUNCTION {entry_hash}(prev bytea, e {qualified}) RETURNS bytea
        LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
            SELECT sha256(prev || convert_to(jsonb_build_array({values})::text, 'UTF8'))
        $$
        """,
        # Once per statement: the head row locked until the transaction ends (appends
        # are serialised; under REPEATABLE READ a concurrent append is a serialization
        # failure, never a fork).
        f"""
        CREATE FUNCTION {schema}.{table}_chain_lock() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        BEGIN
            PERFORM 1 FROM {head} FOR UPDATE;
            RETURN NULL;
        END
        $$
        """,
        # Per row: the previous entry is the head, or the last row this statement added
        # (a row-level BEFORE trigger sees the rows its statement processed before):
        # no write per row, so a batch of entries costs one head update, not one each.
        f"""
        CREATE FUNCTION {schema}.{table}_chain_append() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
            previous bytea;
            last_seq bigint;
            added_seq bigint;
            added_hash bytea;
        BEGIN
            SELECT h.seq, h.hash INTO last_seq, previous FROM {head} h;
            SELECT e.chain_seq, e.chain_hash INTO added_seq, added_hash FROM {qualified} e
             WHERE e.chain_seq > last_seq ORDER BY e.chain_seq DESC LIMIT 1;
            IF FOUND THEN
                last_seq := added_seq;
                previous := added_hash;
            END IF;
            NEW.chain_seq := last_seq + 1;
            NEW.chain_hash := {entry_hash}(previous, NEW);
            RETURN NEW;
        END
        $$
        """,
        # Once per statement: the head moves to the last entry it added.
        f"""
        CREATE FUNCTION {schema}.{table}_chain_move_head() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        BEGIN
            UPDATE {head} h SET seq = a.chain_seq, hash = a.chain_hash
              FROM (SELECT chain_seq, chain_hash FROM added ORDER BY chain_seq DESC LIMIT 1) a
             WHERE a.chain_seq > h.seq;
            RETURN NULL;
        END
        $$
        """,
        f"REVOKE ALL ON FUNCTION {schema}.{table}_chain_lock() FROM PUBLIC",
        f"REVOKE ALL ON FUNCTION {schema}.{table}_chain_move_head() FROM PUBLIC",
        f"REVOKE ALL ON FUNCTION {schema}.{table}_chain_append() FROM PUBLIC",
        f"ALTER TABLE {qualified} DISABLE TRIGGER {table}_no_update_delete",
        f"""
        DO $$
        DECLARE
            e {qualified}%ROWTYPE;
            previous bytea := '\\x{GENESIS.hex()}'::bytea;
            n bigint := 0;
        BEGIN
            FOR e IN SELECT * FROM {qualified} ORDER BY id LOOP
                n := n + 1;
                e.chain_seq := n;
                previous := {entry_hash}(previous, e);
                UPDATE {qualified} SET chain_seq = n, chain_hash = previous WHERE id = e.id;
            END LOOP;
            UPDATE {head} SET seq = n, hash = previous;
        END
        $$
        """,
        f"ALTER TABLE {qualified} ENABLE TRIGGER {table}_no_update_delete",
        f"ALTER TABLE {qualified} ALTER COLUMN chain_seq SET NOT NULL, "
        f"ALTER COLUMN chain_hash SET NOT NULL, "
        f"ADD CONSTRAINT {table}_chain_seq_key UNIQUE (chain_seq)",
        f"CREATE TRIGGER {table}_chain_lock BEFORE INSERT ON {qualified} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {schema}.{table}_chain_lock()",
        f"CREATE TRIGGER {table}_chain BEFORE INSERT ON {qualified} "
        f"FOR EACH ROW EXECUTE FUNCTION {schema}.{table}_chain_append()",
        f"CREATE TRIGGER {table}_chain_head AFTER INSERT ON {qualified} "
        f"REFERENCING NEW TABLE AS added "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {schema}.{table}_chain_move_head()",
    ]


def drop_chain_ddl(table: str = "audit_log", *, schema: str = "public") -> list[str]:
    table, schema = _check_name(table), _check_name(schema)
    qualified = f"{schema}.{table}"
    return [
        f"DROP TRIGGER IF EXISTS {table}_chain_head ON {qualified}",
        f"DROP TRIGGER IF EXISTS {table}_chain ON {qualified}",
        f"DROP TRIGGER IF EXISTS {table}_chain_lock ON {qualified}",
        f"DROP FUNCTION IF EXISTS {schema}.{table}_chain_move_head()",
        f"DROP FUNCTION IF EXISTS {schema}.{table}_chain_append()",
        f"DROP FUNCTION IF EXISTS {schema}.{table}_chain_lock()",
        f"DROP FUNCTION IF EXISTS {schema}.{table}_entry_hash(bytea, {qualified})",
        f"DROP TABLE IF EXISTS {schema}.{table}_chain_head",
        f"ALTER TABLE {qualified} DROP CONSTRAINT IF EXISTS {table}_chain_seq_key",
        f"ALTER TABLE {qualified} DROP COLUMN IF EXISTS chain_seq, "
        f"DROP COLUMN IF EXISTS chain_hash",
    ]


def append_only_ddl(table: str) -> list[str]:
    """SQL making ``table`` append-only (for a migration's ``op.execute``)."""
    function = f"{table}_append_only"
    return [
        f"""
        CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit entries are append-only: % on % refused', TG_OP, TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """,
        f"CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        # Belt and braces for non-owner roles (the trigger also binds the owner and superusers).
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM PUBLIC",
    ]


def drop_append_only_ddl(table: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
        f"DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table}",
        f"DROP FUNCTION IF EXISTS {table}_append_only()",
    ]


def _json_value(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column in _AS_TEXT:
        return str(value)
    if column in _AS_MICROSECONDS:
        moment: datetime = value
        return (moment - _EPOCH) // timedelta(microseconds=1)
    if isinstance(value, tuple):
        return list(value)
    return value


def canonical(entry: Mapping[str, Any] | RowMapping) -> bytes:
    """The bytes an entry commits to (the same as the database's ``jsonb`` text)."""
    values = [entry["chain_seq"], *(_json_value(c, entry[c]) for c in CHAINED_COLUMNS)]
    return json.dumps(values, ensure_ascii=False, separators=(", ", ": ")).encode()


def entry_hash(previous: bytes, entry: Mapping[str, Any] | RowMapping) -> bytes:
    return hashlib.sha256(previous + canonical(entry)).digest()


@dataclass(frozen=True)
class ChainBreak:
    """The first link that does not hold."""

    reason: str
    chain_seq: int | None
    id: int | None
    expected: str
    found: str

    def __str__(self) -> str:
        where = f"chain_seq {self.chain_seq}" if self.chain_seq is not None else "unchained"
        return (
            f"{self.reason} at {where} (id {self.id}): expected {self.expected}, found {self.found}"
        )


@dataclass(frozen=True)
class ChainReport:
    table: str
    entries: int
    head_seq: int
    head_hash: str
    broken: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.broken is None


@dataclass(frozen=True)
class Anchor:
    """A chain head recorded earlier, out of the database's reach."""

    seq: int
    hash: str

    @classmethod
    def parse(cls, value: str) -> Anchor:
        seq, _, digest = value.partition(":")
        if not seq.isdigit() or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValueError("an anchor is SEQ:HASH (the hash as 64 hex digits)")
        return cls(int(seq), digest)


async def verify_chain(
    connection: AsyncConnection,
    table: str = "audit_log",
    *,
    anchors: Sequence[Anchor] = (),
    page: int = 5000,
) -> ChainReport:
    """Walk the chain in ``chain_seq`` order, recomputing every hash; stops at the first
    broken link."""
    table = _check_name(table)
    head = (await connection.execute(text(f"SELECT seq, hash FROM {table}_chain_head"))).one()
    head_seq, head_hash = int(head.seq), bytes(head.hash)

    def report(entries: int, broken: ChainBreak | None) -> ChainReport:
        return ChainReport(table, entries, head_seq, head_hash.hex(), broken)

    unchained = (
        await connection.execute(
            text(f"SELECT id FROM {table} WHERE chain_seq IS NULL ORDER BY id LIMIT 1")
        )
    ).first()
    if unchained is not None:
        return report(
            0,
            ChainBreak(
                "entry outside the chain (inserted with the chain trigger disabled)",
                None,
                int(unchained.id),
                "a chain_seq",
                "none",
            ),
        )
    wanted = {a.seq: a.hash for a in anchors}
    columns = ", ".join(["id", "chain_seq", "chain_hash", *CHAINED_COLUMNS])
    statement = text(
        f"SELECT {columns} FROM {table} WHERE chain_seq > :after ORDER BY chain_seq LIMIT :page"
    )
    previous, expected_seq, entries = GENESIS, 1, 0
    while True:
        rows = await connection.execute(statement, {"after": expected_seq - 1, "page": page})
        batch = rows.mappings().all()
        if not batch:
            break
        for row in batch:
            seq = int(row["chain_seq"])
            if seq != expected_seq:
                return report(
                    entries,
                    ChainBreak(
                        "entries missing (deleted?)",
                        seq,
                        row["id"],
                        f"chain_seq {expected_seq}",
                        f"chain_seq {seq}",
                    ),
                )
            computed = entry_hash(previous, row)
            stored = bytes(row["chain_hash"])
            if computed != stored:
                return report(
                    entries,
                    ChainBreak(
                        "entry altered or chain rewritten",
                        seq,
                        row["id"],
                        computed.hex(),
                        stored.hex(),
                    ),
                )
            anchored = wanted.pop(seq, None)
            if anchored is not None and anchored != stored.hex():
                return report(
                    entries,
                    ChainBreak(
                        "chain rewritten since the anchor was taken",
                        seq,
                        row["id"],
                        anchored,
                        stored.hex(),
                    ),
                )
            previous, expected_seq, entries = stored, seq + 1, entries + 1
    if head_seq != entries or head_hash != previous:
        return report(
            entries,
            ChainBreak(
                "entries missing from the end (the head says more)",
                head_seq,
                None,
                f"head {head_seq}:{head_hash.hex()}",
                f"last {entries}:{previous.hex()}",
            ),
        )
    if wanted:
        seq = min(wanted)
        return report(
            entries,
            ChainBreak("anchored entry no longer in the chain", seq, None, wanted[seq], "nothing"),
        )
    return report(entries, None)
