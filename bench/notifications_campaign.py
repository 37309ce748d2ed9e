"""Notifications benchmark (issue 6): a 50,000-person campaign, to SMTP and to the inbox.

Against the real PostgreSQL and Kafka and a real ``notifications-worker`` process:

1. **Email.** N people (default 50,000) whose first channel is email; one campaign
   (template ``migration_awareness``, no throttle in practice) scheduled now. Rate =
   N / (last delivery marked sent - campaign started), from the service's own rows.
   The SMTP server is a minimal asyncio SMTP sink in its own process (it speaks
   EHLO/MAIL/RCPT/DATA/RSET/QUIT, counts messages and distinct Message-IDs, and
   answers a private ``XCOUNT`` command), so that it costs the worker as little CPU
   as possible on this 2-core machine.
2. **Reference.** A bare aiosmtplib sender (as many concurrent connections as the
   worker has email senders) sends N messages of the same size to the same sink
   in the same run: the ratio platform/bare says what the delivery guarantees cost.
3. **Inbox.** N other people whose only channel is the in-app inbox; one campaign.
   Rate = N / (last inbox delivery - campaign started).

Targets: at least 200 emails/s and 2,000 inbox messages/s.

    uv run python bench/notifications_campaign.py                 # 50,000 people per part
    uv run python bench/notifications_campaign.py --people 5000   # quick run
    uv run python bench/notifications_campaign.py --email-senders 8 --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import sys
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any, ClassVar

import _bootstrap  # noqa: F401  (keeps bench/ off sys.path: see bench/_bootstrap.py)
import aiosmtplib
import asyncpg
from uuid_utils.compat import uuid7

from diaspora_devstack import stack
from diaspora_devstack.config import StackConfig
from diaspora_devstack.testing import (
    ServiceProcess,
    create_database,
    drop_database,
    free_port,
    migrate,
    service_env,
    unique_name,
)

THIS_FILE = str(Path(__file__).resolve())
EMAIL_TARGET = 200.0
INBOX_TARGET = 2000.0


def progress(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# -- the SMTP sink (run as `python bench/notifications_campaign.py --sink PORT`) -------


class _SinkProtocol(asyncio.Protocol):
    counts: ClassVar[dict[str, int]] = {"messages": 0}
    message_ids: ClassVar[set[bytes]] = set()
    _mid = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buffer = b""
        self.in_data = False
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    return
                message, self.buffer = self.buffer[:end], self.buffer[end + 5 :]
                self.in_data = False
                self.counts["messages"] += 1
                found = self._mid.search(message)
                if found:
                    self.message_ids.add(found.group(1))
                self.transport.write(b"250 OK queued\r\n")
                continue
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                return
            line, self.buffer = self.buffer[:line_end], self.buffer[line_end + 2 :]
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.transport.write(b"250-sink\r\n250-8BITMIME\r\n250-SIZE 10485760\r\n250 OK\r\n")
            elif verb == b"DATA":
                self.in_data = True
                self.transport.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                self.transport.write(b"221 bye\r\n")
                self.transport.close()
                return
            elif line.upper().startswith(b"XCOUNT"):
                n, unique = self.counts["messages"], len(self.message_ids)
                self.transport.write(f"250 {n} {unique}\r\n".encode())
            else:  # MAIL, RCPT, RSET, NOOP
                self.transport.write(b"250 OK\r\n")


def run_sink(port: int) -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_SinkProtocol, "127.0.0.1", port)
        print("sink ready", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


async def sink_count(port: int) -> tuple[int, int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    writer.write(b"XCOUNT\r\n")
    await writer.drain()
    answer = (await reader.readline()).split()
    writer.write(b"QUIT\r\n")
    await writer.drain()
    writer.close()
    return int(answer[1]), int(answer[2])


# -- the bench ------------------------------------------------------------------------


async def populate(conn: Any, n: int, *, country: str, inbox_only: bool) -> None:
    rows = [
        (
            uuid7(),
            f"Personne{i}",
            "Bench",
            f"bench.{country.lower()}.{i}@example.org",
            "+22890000000",
            "fr" if i % 3 else "en",
            country,
        )
        for i in range(n)
    ]
    await conn.copy_records_to_table(
        "recipients",
        records=rows,
        columns=[
            "member_id",
            "given_name",
            "family_name",
            "email",
            "phone",
            "language",
            "country_of_residence",
        ],
    )
    if inbox_only:
        await conn.execute(
            "INSERT INTO preferences (member_id, channels) "
            "SELECT member_id, '{inbox}' FROM recipients WHERE country_of_residence = $1",
            country,
        )


async def run_campaign(conn: Any, *, country: str, n: int, timeout: float) -> dict[str, Any]:
    campaign_id = uuid7()
    await conn.execute(
        "INSERT INTO campaigns (id, name, template, variables, segment, rate_per_second,"
        " status, send_at, created_by) VALUES ($1, 'bench', 'migration_awareness',"
        " '{\"hotline\": \"+228 22 00 00 00\"}', $2, 1000000, 'scheduled', now(), 'bench')",
        campaign_id,
        json.dumps({"countries": [country]}),
    )
    deadline = time.monotonic() + timeout
    last_report = 0.0
    while time.monotonic() < deadline:
        row = await conn.fetchrow(
            "SELECT status, started_at, audience FROM campaigns WHERE id = $1", campaign_id
        )
        sent = await conn.fetchval(
            "SELECT count(*) FROM deliveries WHERE campaign_id = $1 AND status = 'sent'",
            campaign_id,
        )
        if time.monotonic() - last_report > 10:
            progress(f"  {country}: {row['status']}, {sent:,} of {n:,} sent")
            last_report = time.monotonic()
        if sent >= n:
            break
        await asyncio.sleep(0.5)
    stats = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE d.status = 'sent') AS sent,"
        " count(*) FILTER (WHERE d.status <> 'sent') AS other,"
        " min(d.sent_at) AS first, max(d.sent_at) AS last, c.started_at"
        " FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id"
        " WHERE d.campaign_id = $1 GROUP BY c.started_at",
        campaign_id,
    )
    elapsed = (stats["last"] - stats["started_at"]).total_seconds()
    return {
        "sent": stats["sent"],
        "not_sent": stats["other"],
        "seconds": round(elapsed, 2),
        "per_second": round(stats["sent"] / elapsed, 1) if elapsed > 0 else None,
    }


async def bare_sender(port: int, n: int, connections: int, size: int) -> dict[str, Any]:
    """The reference: aiosmtplib alone, same sink, same message size, no database."""
    body = "x" * size
    counter = iter(range(n))

    async def one_connection() -> int:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
        await client.connect()
        sent = 0
        for i in counter:
            message = EmailMessage()
            message["From"] = "no-reply@diaspora.gouv.tg"
            message["To"] = f"bare.{i}@example.org"
            message["Subject"] = "Migration irrégulière : connaître les risques"
            message["Date"] = formatdate(localtime=False)
            message["Message-ID"] = f"<bare-{i}@bench>"
            message.set_content(body)
            await client.send_message(message)
            sent += 1
        await client.quit()
        return sent

    started = time.perf_counter()
    done = await asyncio.gather(*(one_connection() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    return {"sent": sum(done), "seconds": round(elapsed, 2), "per_second": round(n / elapsed, 1)}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    endpoints, _ = await asyncio.to_thread(stack.up)
    logs = StackConfig.from_env().state / "bench-logs"
    logs.mkdir(parents=True, exist_ok=True)
    db_url = await create_database(endpoints.pg_url, "bench_notifications")
    await asyncio.to_thread(migrate, "notifications", db_url)
    sink_port = free_port()
    sink = ServiceProcess(
        "smtp-sink",
        [sys.executable, THIS_FILE, "--sink", str(sink_port)],
        {},
        logs / "smtp-sink.log",
    ).start()
    worker: ServiceProcess | None = None
    results: dict[str, Any] = {
        "people": args.people,
        "email_senders": args.email_senders,
        "machine": (
            f"{os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}"
        ),
        "load_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    conn = await asyncpg.connect(db_url)
    try:
        progress(f"populating {args.people:,} email people and {args.people:,} inbox people")
        await populate(conn, args.people, country="SN", inbox_only=False)
        await populate(conn, args.people, country="CI", inbox_only=True)
        await conn.execute("ANALYZE")
        env = service_env(
            "NOTIFICATIONS",
            database_url=db_url,
            kafka=endpoints.kafka_bootstrap,
            topic_prefix=unique_name("bench") + ".",
            extra={
                "NOTIFICATIONS_SMTP_PORT": str(sink_port),
                "NOTIFICATIONS_EMAIL_SENDERS": str(args.email_senders),
                "NOTIFICATIONS_CAMPAIGN_BATCH_SIZE": str(args.batch),
                "NOTIFICATIONS_CAMPAIGN_POLL_INTERVAL": "0.2",
                "NOTIFICATIONS_JSON_LOGS": "true",
            },
        )
        worker = ServiceProcess(
            "notifications-worker", ["notifications-worker"], env, logs / "worker.log"
        ).start()
        await asyncio.sleep(5)  # topics, consumer group, relay
        if not worker.alive:
            raise RuntimeError(f"worker died:\n{worker.log_tail()}")

        progress("1. email campaign")
        results["email"] = await run_campaign(conn, country="SN", n=args.people, timeout=3600)
        count, unique = await sink_count(sink_port)
        results["email"]["sink_messages"] = count
        results["email"]["sink_distinct_message_ids"] = unique
        progress(f"   {results['email']}")

        progress("2. bare aiosmtplib sender, same sink")
        size = len(
            (await conn.fetchval("SELECT body FROM deliveries WHERE channel = 'email' LIMIT 1"))
            or ""
        )
        results["bare"] = await bare_sender(sink_port, args.people, args.email_senders, size)
        results["ratio_email_to_bare"] = round(
            results["email"]["per_second"] / results["bare"]["per_second"], 3
        )
        progress(f"   {results['bare']}")

        progress("3. inbox campaign")
        results["inbox"] = await run_campaign(conn, country="CI", n=args.people, timeout=3600)
        progress(f"   {results['inbox']}")
        results["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        await conn.close()
        if worker is not None:
            worker.stop()
        sink.stop()
        await drop_database(db_url)
    return results


def report(r: dict[str, Any]) -> None:
    def verdict(value: float | None, target: float) -> str:
        return "ok" if value is not None and value >= target else "MISSED"

    e, b, i = r["email"], r["bare"], r["inbox"]
    print(f"machine: {r['machine']}")
    print(f"load average at start {r['load_at_start']}, at end {r['load_at_end']}")
    print(f"campaign of {r['people']:,} people per channel, {r['email_senders']} email senders")
    print(
        f"email  {e['per_second']:>9,} /s  ({e['sent']:,} sent in {e['seconds']} s; sink got "
        f"{e['sink_messages']:,} messages, {e['sink_distinct_message_ids']:,} distinct Message-IDs)"
        f"  target >= {EMAIL_TARGET:.0f}: {verdict(e['per_second'], EMAIL_TARGET)}"
    )
    print(f"bare   {b['per_second']:>9,} /s  (aiosmtplib alone, {b['sent']:,} in {b['seconds']} s)")
    print(f"email/bare ratio {r['ratio_email_to_bare']}")
    print(
        f"inbox  {i['per_second']:>9,} /s  ({i['sent']:,} delivered in {i['seconds']} s)"
        f"  target >= {INBOX_TARGET:.0f}: {verdict(i['per_second'], INBOX_TARGET)}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--email-senders", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.sink:
        run_sink(parsed.sink)
        sys.exit(0)
    outcome = asyncio.run(main(parsed))
    if parsed.json:
        print(json.dumps(outcome, indent=2, default=str))
    else:
        report(outcome)
