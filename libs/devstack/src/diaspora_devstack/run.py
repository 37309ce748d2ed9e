"""`devstack run`: the whole platform on this machine, until Ctrl-C.

Processes come from deploy/local/processes.toml: one-shot steps (migrations) first,
side by side, then the long-running ones, each line of output prefixed with its name
(and kept in ``.local/log/run/<name>.log``). "Platform up" is printed only once every
process passes its readiness checks (the gateway's go through its routes to every
service); until then one line every few seconds says what is still starting. A process
that fails or exits before that is named with the end of its log, everything is stopped
and the exit code is not zero.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from diaspora_devstack import postgres, stack
from diaspora_devstack.config import StackConfig
from diaspora_service.db_roles import with_role

# How long the processes may take to pass their readiness checks (DIASPORA_RUN_READY_TIMEOUT).
READY_TIMEOUT_SECONDS = 300.0
# One "still starting" line this often.
PROGRESS_EVERY_SECONDS = 3.0
# Lines of a failed process's log shown.
TAIL_LINES = 20
SERVICE_DATABASES = ("registry", "notifications", "matching", "consular", "returnees")
_NAMESPACE = re.compile(r"[a-z][a-z0-9_]{0,30}")

DEVELOPMENT_BANNER = (
    "DEVELOPMENT MODE (<SERVICE>_ENVIRONMENT=development): tokens come from the "
    "development identity provider (uv run devstack token: anyone can mint any role) signed "
    "with development keys kept in {keys}, documents are encrypted with the development key "
    "published in this repository, PostgreSQL has no password and Kafka is plaintext on "
    "loopback. Never expose it; never use this for real people's data."
)


class StartFailed(Exception):
    """A process failed or exited before the platform was ready."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# What to start ------------------------------------------------------------------------


@dataclass
class ProcessSpec:
    name: str
    command: list[str]
    oneshot: bool = False
    url: str | None = None
    # Readiness checks: http(s) URLs that must answer 200, smtp:// that must greet (220).
    ready: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Layout:
    """Ports and names of one platform: `make run`'s fixed ones, or overridden from the
    environment (DIASPORA_<NAME>_PORT, DIASPORA_RUN_NAMESPACE) so that a test runs
    a platform of its own beside others on the same PostgreSQL and Kafka."""

    ports: dict[str, int]
    namespace: str = ""

    @classmethod
    def from_env(cls, defaults: Mapping[str, int], env: Mapping[str, str] = os.environ) -> Layout:
        ports = {
            name: int(env.get(f"DIASPORA_{name.upper()}_PORT", default))
            for name, default in defaults.items()
        }
        namespace = env.get("DIASPORA_RUN_NAMESPACE", "")
        if namespace and not _NAMESPACE.fullmatch(namespace):
            raise ValueError(
                f"DIASPORA_RUN_NAMESPACE={namespace!r}: lower-case letters, digits and _ only"
            )
        return cls(ports=ports, namespace=namespace)

    @property
    def db_prefix(self) -> str:
        return f"{self.namespace}_" if self.namespace else ""

    @property
    def topic_prefix(self) -> str:
        return f"{self.namespace}." if self.namespace else ""

    def databases(self) -> tuple[str, ...]:
        return tuple(self.db_prefix + name for name in SERVICE_DATABASES)


def dev_issuer_url(port: int) -> str:
    """The development identity provider's issuer (diaspora_devstack.idp.issuer_url; not
    imported here: its imports cost seconds before `make run` says anything)."""
    return f"http://127.0.0.1:{port}/dev-idp"


def processes_file(cfg: StackConfig) -> Path:
    return cfg.root / "deploy" / "local" / "processes.toml"


def read_plan(cfg: StackConfig) -> dict[str, object]:
    return tomllib.loads(processes_file(cfg).read_text())


def layout_from_env(cfg: StackConfig) -> Layout:
    ports = read_plan(cfg).get("ports", {})
    assert isinstance(ports, dict)
    return Layout.from_env(ports)


def variables(cfg: StackConfig, endpoints: stack.Endpoints, layout: Layout) -> dict[str, str]:
    """The values of the placeholders of processes.toml."""
    pg_async = endpoints.pg_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    # Each service's processes connect as its runtime role (insert-only on its audit table,
    # not the owner; diaspora_service.db_roles), created by its `*-migrate` on first run.
    runtime_roles = {
        f"pg_async_{service}_app": with_role(pg_async, f"{service}_app", f"{service}_app")
        for service in SERVICE_DATABASES
    }
    return {
        "pg": endpoints.pg_url,
        "pg_async": pg_async,
        **runtime_roles,
        "kafka": endpoints.kafka_bootstrap,
        "root": str(cfg.root),
        "state": str(cfg.state),
        "python": sys.executable,
        "issuer": dev_issuer_url(layout.ports["idp"]),
        "db_prefix": layout.db_prefix,
        "topic_prefix": layout.topic_prefix,
        **{f"{name}_port": str(port) for name, port in layout.ports.items()},
    }


def load_specs(cfg: StackConfig, values: dict[str, str]) -> list[ProcessSpec]:
    raw = read_plan(cfg)
    entries = raw["process"]
    assert isinstance(entries, list)
    return [
        ProcessSpec(
            name=entry["name"],
            command=[part.format(**values) for part in entry["command"]],
            oneshot=entry.get("oneshot", False),
            url=entry.get("url", "").format(**values) or None,
            ready=[url.format(**values) for url in entry.get("ready", [])],
            env={k: str(v).format(**values) for k, v in entry.get("env", {}).items()},
        )
        for entry in entries
    ]


def base_env(endpoints: stack.Endpoints) -> dict[str, str]:
    """The environment every process starts with (each spec's own `env` comes on top)."""
    # Services refuse to start without their environment (fail closed): set it, and say so
    # (DEVELOPMENT_BANNER).
    development = {f"{name.upper()}_ENVIRONMENT": "development" for name in SERVICE_DATABASES}
    env = {
        **os.environ,
        **endpoints.as_env(),
        "DIASPORA_ENVIRONMENT": "development",
        **development,
    }
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


# Started processes ----------------------------------------------------------------------


class Child:
    """A started process: its output goes to the terminal (prefixed with its name), to
    its log file, and its last lines are kept to show when it fails."""

    def __init__(self, spec: ProcessSpec, env: Mapping[str, str], log_dir: Path, width: int):
        self.spec = spec
        self.log_path = log_dir / f"{spec.name}.log"
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            spec.command,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        self._pump = threading.Thread(
            target=self._copy, args=(self.process.stdout, width), daemon=True
        )
        self._pump.start()

    @property
    def name(self) -> str:
        return self.spec.name

    def _copy(self, stream: IO[bytes], width: int) -> None:
        with self.log_path.open("w", encoding="utf-8") as log:
            for raw in iter(stream.readline, b""):
                line = raw.decode(errors="replace").rstrip("\n")
                self.tail.append(line)
                log.write(line + "\n")
                log.flush()
                sys.stdout.write(f"{self.name:<{width}} | {line}\n")
                sys.stdout.flush()

    def exit_code(self) -> int | None:
        return self.process.poll()

    def failure(self, what: str) -> str:
        """``what`` and the end of the process's log."""
        self._pump.join(timeout=5)  # the last lines it wrote before exiting
        lines = list(self.tail)
        shown = "\n".join(f"    {line}" for line in lines) if lines else "    (no output)"
        return (
            f"{self.name} {what}. The last {len(lines)} lines of its log ({self.log_path}):\n"
            f"{shown}"
        )

    def terminate(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)

    def wait_or_kill(self, deadline: float) -> None:
        try:
            self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def stop_all(children: Iterable[Child], grace: float = 15.0) -> None:
    children = list(children)
    for child in children:
        child.terminate()
    deadline = time.monotonic() + grace
    for child in children:
        child.wait_or_kill(deadline)


# Readiness ------------------------------------------------------------------------------


# No proxy from the environment: every check is on this machine.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def probe(url: str) -> str | None:
    """None when ``url`` is ready; otherwise why not (a few words)."""
    parts = urlsplit(url)
    if parts.scheme == "smtp":
        try:
            with socket.create_connection((parts.hostname, parts.port or 25), timeout=2) as sock:
                greeting = sock.recv(512)
        except OSError as error:
            return error.strerror or type(error).__name__
        return None if greeting.startswith(b"220") else f"greeting {greeting[:40]!r}"
    try:
        with _LOCAL.open(url, timeout=2) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except (OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", error)
        return getattr(reason, "strerror", None) or type(reason).__name__
    return None if status == 200 else f"HTTP {status}"


def not_ready(children: Iterable[Child]) -> dict[str, str]:
    """Process name -> why it is not ready yet, for those whose checks do not all pass."""
    waiting = {}
    for child in children:
        for url in child.spec.ready:
            reason = probe(url)
            if reason is not None:
                waiting[child.name] = f"{urlsplit(url).path or url}: {reason}"
                break
    return waiting


# The run --------------------------------------------------------------------------------


class Platform:
    def __init__(self, cfg: StackConfig, endpoints: stack.Endpoints, layout: Layout) -> None:
        self.cfg = cfg
        self.specs = load_specs(cfg, variables(cfg, endpoints, layout))
        self.env = base_env(endpoints)
        self.log_dir = cfg.log_dir / "run"
        self.width = max(len(s.name) for s in self.specs)
        self.children: list[Child] = []
        self.stopping = threading.Event()

    def _start(self, spec: ProcessSpec) -> Child:
        child = Child(spec, {**self.env, **spec.env}, self.log_dir, self.width)
        self.children.append(child)
        return child

    def migrate(self) -> None:
        """The one-shot steps, side by side; each must exit 0."""
        steps = [self._start(spec) for spec in self.specs if spec.oneshot]
        print(f"... running {', '.join(step.name for step in steps)}", flush=True)
        while steps and not self.stopping.is_set():
            for step in list(steps):
                code = step.exit_code()
                if code == 0:
                    steps.remove(step)
                elif code is not None:  # the others are stopped with the rest
                    raise StartFailed(step.failure(f"failed with exit code {code}"), code)
            self.stopping.wait(0.2)

    def start(self, t0: float) -> None:
        """Start the long-running processes; return once every one is ready."""
        running = [self._start(spec) for spec in self.specs if not spec.oneshot]
        timeout = float(os.environ.get("DIASPORA_RUN_READY_TIMEOUT", READY_TIMEOUT_SECONDS))
        next_progress = time.monotonic() + PROGRESS_EVERY_SECONDS
        ready: set[str] = set()
        while not self.stopping.is_set():
            self.check_alive("before it was ready")
            waiting = not_ready([c for c in running if c.name not in ready])
            ready |= {c.name for c in running} - set(waiting)
            # Everything passed once: confirm in one go (a check may have turned false).
            if not waiting and not (waiting := not_ready(running)):
                self.check_alive("before it was ready")
                return
            now = time.monotonic()
            if now - t0 > timeout:
                raise StartFailed(self._timeout_report(running, waiting, timeout), 1)
            if now >= next_progress:
                print(f"... still starting ({now - t0:.0f}s): {', '.join(waiting)}", flush=True)
                next_progress = now + PROGRESS_EVERY_SECONDS
            self.stopping.wait(0.5)

    def _timeout_report(self, running: list[Child], waiting: dict[str, str], timeout: float) -> str:
        lines = [f"not ready after {timeout:.0f}s (DIASPORA_RUN_READY_TIMEOUT):"]
        for child in running:
            if child.name in waiting:
                lines.append(child.failure(f"is not ready ({waiting[child.name]})"))
        return "\n".join(lines)

    def check_alive(self, when: str) -> None:
        for child in self.children:
            if child.spec.oneshot:
                continue
            code = child.exit_code()
            if code is not None:
                raise StartFailed(child.failure(f"exited with code {code} {when}"), code or 1)

    def announce(self, t0: float, endpoints: stack.Endpoints) -> None:
        width = self.width
        print(
            f"\nPlatform up in {time.monotonic() - t0:.1f}s (every process ready, every "
            "service answering through the gateway). Listening:"
        )
        print(f"  PostgreSQL  {endpoints.pg_url}  (one database per service)")
        print(f"  Kafka       {endpoints.kafka_bootstrap}")
        for spec in self.specs:
            if spec.url:
                print(f"  {spec.name:<{width}}  {spec.url}")
        print(development_banner(self.cfg))
        print("Press Ctrl-C to stop.\n", flush=True)

    def serve(self) -> int:
        """Until Ctrl-C (0) or until a process exits (its exit code, at least 1)."""
        while not self.stopping.is_set():
            try:
                self.check_alive("; stopping the platform")
            except StartFailed as failed:
                print(f"\n{failed}", flush=True)
                return failed.exit_code
            self.stopping.wait(0.5)
        return 0

    def stop(self) -> None:
        if any(child.exit_code() is None for child in self.children):
            print("\nStopping...", flush=True)
        stop_all(self.children)


def development_banner(cfg: StackConfig) -> str:
    return DEVELOPMENT_BANNER.format(keys=cfg.state / "idp" / "keys")


def run(*, keep_infra: bool = False) -> int:
    cfg = StackConfig.from_env()
    t0 = time.monotonic()
    layout = layout_from_env(cfg)
    print(development_banner(cfg), flush=True)
    endpoints, started = stack.up(cfg)
    try:
        if layout.namespace:
            asyncio.run(postgres.ensure_databases(endpoints.pg_url, layout.databases()))
        platform = Platform(cfg, endpoints, layout)

        def request_stop(_signum: int, _frame: object) -> None:
            platform.stopping.set()

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        try:
            platform.migrate()
            if not platform.stopping.is_set():
                platform.start(t0)
        except StartFailed as failed:
            print(f"\nThe platform did not start: {failed}", file=sys.stderr, flush=True)
            platform.stop()
            return failed.exit_code
        if platform.stopping.is_set():  # Ctrl-C while starting
            platform.stop()
            print("Stopped before the platform was up.", flush=True)
            return 130
        platform.announce(t0, endpoints)
        exit_code = platform.serve()
        platform.stop()
        print("Stopped.", flush=True)
        return exit_code
    finally:
        _stop_infra(cfg, started, keep_infra)


def _stop_infra(cfg: StackConfig, started: list[str], keep: bool) -> None:
    if started and not keep:
        stack.down(cfg)
