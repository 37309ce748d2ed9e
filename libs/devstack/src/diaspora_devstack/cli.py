"""devstack: local infrastructure for the platform (no Docker, no root needed)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from diaspora_devstack import kafka, postgres, stack
from diaspora_devstack.config import StackConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start PostgreSQL and Kafka if they are not running")
    sub.add_parser("down", help="stop what `up` started")
    sub.add_parser("status", help="show what runs")
    sub.add_parser("env", help="print the environment variables pointing at the infrastructure")
    run = sub.add_parser("run", help="start the whole platform in the foreground (Ctrl-C stops)")
    run.add_argument("--keep-infra", action="store_true", help="leave PostgreSQL and Kafka up")
    mail = sub.add_parser("mailbox", help="a local SMTP server that keeps mail in a folder")
    mail.add_argument("--port", type=int, default=2525)
    mail.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args(argv)
    cfg = StackConfig.from_env()

    try:
        if args.command == "up":
            t0 = time.monotonic()
            endpoints, started = stack.up(cfg)
            what = ", ".join(started) if started else "nothing (already running)"
            print(f"started {what} in {time.monotonic() - t0:.1f}s")
            for name, value in endpoints.as_env().items():
                print(f"{name}={value}")
        elif args.command == "down":
            stopped = stack.down(cfg)
            print(f"stopped {', '.join(stopped) if stopped else 'nothing'}")
        elif args.command == "status":
            for name, running in stack.status(cfg).items():
                print(f"{name}: {'running' if running else 'stopped'}")
        elif args.command == "env":
            found = stack.external_endpoints()
            env = (
                found.as_env()
                if found
                else {
                    "DIASPORA_PG_URL": cfg.pg_url,
                    "DIASPORA_KAFKA_BOOTSTRAP": cfg.kafka_bootstrap,
                }
            )
            for name, value in env.items():
                print(f"export {name}={value}")
        elif args.command == "run":
            from diaspora_devstack.run import run as run_platform

            return run_platform(keep_infra=args.keep_infra)
        elif args.command == "mailbox":
            return _mailbox(args.port, args.folder or cfg.state / "mail")
    except (kafka.KafkaError, postgres.PostgresError) as error:
        print(f"devstack: {error}", file=sys.stderr)
        return 2
    return 0


def _mailbox(port: int, folder: Path) -> int:
    import signal
    import threading

    from diaspora_devstack.mailbox import Mailbox

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with Mailbox(port=port, folder=folder):
        print(f"SMTP mail catcher on 127.0.0.1:{port}, keeping mail in {folder}", flush=True)
        done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
