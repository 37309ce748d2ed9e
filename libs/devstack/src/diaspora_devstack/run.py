"""`devstack run`: the whole platform on this machine, until Ctrl-C.

Processes come from deploy/local/processes.toml: one-shot steps (migrations)
first, then the long-running ones, each line of output prefixed with its name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from diaspora_devstack import stack
from diaspora_devstack.config import StackConfig


@dataclass
class ProcessSpec:
    name: str
    command: list[str]
    oneshot: bool = False
    url: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def load_specs(cfg: StackConfig, variables: dict[str, str]) -> list[ProcessSpec]:
    path = cfg.root / "deploy" / "local" / "processes.toml"
    raw = tomllib.loads(path.read_text())
    specs = []
    for entry in raw["process"]:
        specs.append(
            ProcessSpec(
                name=entry["name"],
                command=[part.format(**variables) for part in entry["command"]],
                oneshot=entry.get("oneshot", False),
                url=entry.get("url", "").format(**variables) or None,
                env={k: str(v).format(**variables) for k, v in entry.get("env", {}).items()},
            )
        )
    return specs


def _pump(name: str, stream: IO[bytes], width: int) -> None:
    for line in iter(stream.readline, b""):
        sys.stdout.write(f"{name:<{width}} | {line.decode(errors='replace')}")
        sys.stdout.flush()


def run(*, keep_infra: bool = False) -> int:
    cfg = StackConfig.from_env()
    t0 = time.monotonic()
    endpoints, started = stack.up(cfg)
    pg_async = endpoints.pg_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    variables = {
        "pg": endpoints.pg_url,
        "pg_async": pg_async,
        "kafka": endpoints.kafka_bootstrap,
        "root": str(cfg.root),
        "state": str(cfg.state),
        "python": sys.executable,
    }
    specs = load_specs(cfg, variables)
    width = max(len(s.name) for s in specs)
    # Services refuse to start without their environment (fail closed): set it, and say so.
    development = {
        f"{n}_ENVIRONMENT": "development" for n in ("REGISTRY", "NOTIFICATIONS", "MATCHING")
    }
    base_env = {**os.environ, **endpoints.as_env(), **development}
    print(
        "\n!! DEVELOPMENT MODE (<SERVICE>_ENVIRONMENT=development): tokens come from the"
        "\n!! development identity provider (anyone can mint any role), documents are encrypted"
        "\n!! with the development key published in this repository, the database has no"
        "\n!! password and Kafka is plaintext on loopback. Never expose it; never use real data.\n",
        flush=True,
    )
    bin_dir = str(Path(sys.executable).parent)
    base_env["PATH"] = f"{bin_dir}:{base_env.get('PATH', '')}"

    for spec in (s for s in specs if s.oneshot):
        result = subprocess.run(spec.command, env={**base_env, **spec.env}, check=False)
        if result.returncode != 0:
            print(f"{spec.name} failed with exit code {result.returncode}", file=sys.stderr)
            _stop_infra(cfg, started, keep_infra)
            return result.returncode

    children: list[tuple[ProcessSpec, subprocess.Popen[bytes]]] = []
    for spec in (s for s in specs if not s.oneshot):
        child = subprocess.Popen(
            spec.command,
            env={**base_env, **spec.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert child.stdout is not None
        threading.Thread(target=_pump, args=(spec.name, child.stdout, width), daemon=True).start()
        children.append((spec, child))

    stopping = threading.Event()

    def request_stop(_signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    print(f"\nPlatform up in {time.monotonic() - t0:.1f}s. Listening:")
    print(f"  PostgreSQL  {endpoints.pg_url}  (one database per service)")
    print(f"  Kafka       {endpoints.kafka_bootstrap}")
    for spec in specs:
        if spec.url:
            print(f"  {spec.name:<{width}}  {spec.url}")
    print("Press Ctrl-C to stop.\n", flush=True)

    exit_code = 0
    while not stopping.is_set():
        for spec, child in children:
            if child.poll() is not None:
                print(f"{spec.name} exited with code {child.returncode}; stopping", flush=True)
                exit_code = child.returncode or 1
                stopping.set()
        stopping.wait(0.5)

    print("\nStopping...", flush=True)
    for _spec, child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for _spec, child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    _stop_infra(cfg, started, keep_infra)
    print("Stopped.", flush=True)
    return exit_code


def _stop_infra(cfg: StackConfig, started: list[str], keep: bool) -> None:
    if started and not keep:
        stack.down(cfg)
