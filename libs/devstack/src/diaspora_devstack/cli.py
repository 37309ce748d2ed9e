"""devstack: local infrastructure for the platform (no Docker, no root needed)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from diaspora_devstack import kafka, postgres, stack
from diaspora_devstack.config import StackConfig
from diaspora_devstack.gateway import GatewayError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack", description=__doc__)
    # The development identity provider's port: 8090, or the one `devstack run` was given.
    idp_port = int(os.environ.get("DIASPORA_IDP_PORT", "8090"))
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
    s3 = sub.add_parser(
        "s3", help="a local S3-compatible server (SeaweedFS) for documents, in the foreground"
    )
    s3.add_argument("--port", type=int, default=8333, help="the S3 port (default 8333)")
    s3.add_argument("--folder", type=Path, default=None, help="default: .local/s3")
    s3.add_argument(
        "--bucket", action="append", default=None, help="create this bucket (repeatable)"
    )
    mail_link = sub.add_parser(
        "mail-link", help="print the first link of the newest mail kept for an address"
    )
    mail_link.add_argument("--to", required=True, help="the recipient's address")
    mail_link.add_argument("--containing", default="", help="only a link containing this text")
    mail_link.add_argument("--folder", type=Path, default=None, help="default: .local/mail")
    idp = sub.add_parser(
        "idp", help="DEVELOPMENT ONLY identity provider: OIDC discovery and JWKS of local keys"
    )
    idp.add_argument("--port", type=int, default=idp_port, help=f"default {idp_port}")
    idp.add_argument(
        "--rotate", action="store_true", help="add a new signing key (old ones stay published)"
    )
    token = sub.add_parser(
        "token",
        help="DEVELOPMENT ONLY: print an access token signed by the local identity provider",
    )
    token.add_argument(
        "--role",
        required=True,
        choices=[
            "citizen",
            "embassy_officer",
            "ministry_coordinator",
            "case_worker",
            "partner_caseworker",
            "analyst",
            "admin",
            "service",
        ],
    )
    token.add_argument("--embassy", action="append", default=[], help="embassy id (repeatable)")
    token.add_argument("--partner-org", default=None)
    token.add_argument("--member-id", default=None, help="a citizen's registry member id")
    token.add_argument("--subject", default=None, help="the `sub` claim (default: a new one)")
    token.add_argument("--lifetime", type=int, default=3600, help="seconds (default 3600)")
    token.add_argument(
        "--port", type=int, default=idp_port, help=f"port of `devstack idp` (default {idp_port})"
    )
    gateway = sub.add_parser("gateway", help="run the nginx gateway in the foreground")
    gateway.add_argument("--listen", default="127.0.0.1:8080")
    gateway.add_argument("--registry", default="127.0.0.1:8101")
    gateway.add_argument("--notifications", default="127.0.0.1:8102")
    gateway.add_argument("--matching", default="127.0.0.1:8103")
    gateway.add_argument("--consular", default="127.0.0.1:8104")
    gateway.add_argument("--returnees", default="127.0.0.1:8105")
    gateway.add_argument("--rate-per-address", default="50r/s")
    gateway.add_argument("--burst-per-address", type=int, default=100)
    gateway.add_argument("--rate-per-token", default="20r/s")
    gateway.add_argument("--burst-per-token", type=int, default=40)
    gateway.add_argument("--body-limit", default="1m")
    gateway.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        help="a load balancer in front (address or network) whose X-Forwarded-For is used",
    )
    gateway.add_argument("--name", default="gateway", help="instance name (state folder, logs)")
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
        elif args.command == "s3":
            from diaspora_devstack.seaweed import serve

            folder = (args.folder or cfg.state / "s3").resolve()
            return serve(args.port, folder, args.bucket or ["diaspora-documents"])
        elif args.command == "mail-link":
            from diaspora_devstack.mailbox import newest_link

            link = newest_link(
                args.folder or cfg.state / "mail", args.to, containing=args.containing
            )
            if link is None:
                print(f"devstack: no mail with a link for {args.to} yet", file=sys.stderr)
                return 1
            print(link)
        elif args.command == "idp":
            from diaspora_devstack import idp as dev_idp

            if args.rotate:
                dev_idp.refuse_production()
                key = dev_idp.rotate(cfg)
                print(f"new signing key {key.kid}; tokens minted from now on use it")
                return 0
            return dev_idp.serve(cfg, port=args.port)
        elif args.command == "token":
            from diaspora_devstack import idp as dev_idp

            dev_idp.print_token(
                dev_idp.mint(
                    cfg,
                    role=args.role,
                    embassies=args.embassy,
                    partner_org=args.partner_org,
                    member_id=args.member_id,
                    subject=args.subject,
                    lifetime=args.lifetime,
                    port=args.port,
                )
            )
        elif args.command == "gateway":
            from diaspora_devstack import gateway as gw

            return gw.run(
                cfg,
                gw.GatewaySettings(
                    listen=args.listen,
                    upstreams={
                        "registry": args.registry,
                        "notifications": args.notifications,
                        "matching": args.matching,
                        "consular": args.consular,
                        "returnees": args.returnees,
                    },
                    rate_per_address=args.rate_per_address,
                    burst_per_address=args.burst_per_address,
                    rate_per_token=args.rate_per_token,
                    burst_per_token=args.burst_per_token,
                    body_limit=args.body_limit,
                    trusted_proxies=tuple(args.trusted_proxy),
                    name=args.name,
                ),
            )
    except (kafka.KafkaError, postgres.PostgresError, GatewayError) as error:
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
