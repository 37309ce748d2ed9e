"""`make run` as a newcomer meets it: `devstack run` (what `make run` runs, as a real
process starting the real processes of deploy/local/processes.toml) says "Platform up"
only when every service answers through the gateway; a process that fails to start is
named with the end of its log and the exit code is not zero; and every command of the
README works, in order, against the platform it started.

Each platform here runs on free ports, with databases and topics of its own
(DIASPORA_RUN_NAMESPACE), beside the rest of the suite on the shared PostgreSQL and Kafka.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from diaspora_devstack import stack
from diaspora_devstack.config import repo_root
from diaspora_devstack.pytest_plugin import migrated_template
from diaspora_devstack.readme import run_readme
from diaspora_devstack.run import Layout
from diaspora_devstack.testing import (
    create_database,
    delete_topics_with_prefix,
    drop_database,
    free_port,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = repo_root()
DEFAULT_PORTS: dict[str, int] = tomllib.loads(
    (ROOT / "deploy" / "local" / "processes.toml").read_text()
)["ports"]
SERVICES = ("registry", "notifications", "matching", "consular", "returnees")
# Asked at the moment "Platform up" is printed: through the gateway's routes, each
# service's liveness and a public document of each (the detailed readiness is not
# reachable through the gateway: docs/security.md); and each API's readiness (database,
# broker) on its own port, as a probe asks it.
THROUGH_THE_GATEWAY = [f"/api/{s}/health/live" for s in SERVICES] + [
    f"/api/{s}/openapi.json" for s in SERVICES
]
READY_ON_THEIR_PORTS = [f"{s}_api" for s in SERVICES]
# Slow on a loaded machine: migrations of empty databases, then a dozen Python processes.
START_TIMEOUT = 420.0


def _status(url: str) -> int | str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError as error:
        return repr(error)


def _namespace() -> str:
    return f"t{os.urandom(5).hex()}"


@dataclass
class DevstackRun:
    """`devstack run` in a process of its own, its output read line by line."""

    infra: stack.Endpoints
    state: Path
    namespace: str = field(default_factory=_namespace)
    ports: dict[str, int] = field(
        default_factory=lambda: {name: free_port() for name in DEFAULT_PORTS}
    )
    extra_env: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    # Gateway path -> status, asked the moment "Platform up" was read.
    at_ready: dict[str, int | str] = field(default_factory=dict)
    apis_at_ready: dict[str, int | str] = field(default_factory=dict)
    reported_ready: threading.Event = field(default_factory=threading.Event)
    process: subprocess.Popen[str] | None = None

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def env(self) -> dict[str, str]:
        layout = {f"DIASPORA_{name.upper()}_PORT": str(p) for name, p in self.ports.items()}
        return {
            **os.environ,
            **self.infra.as_env(),
            **layout,
            "DIASPORA_STATE_DIR": str(self.state),
            "DIASPORA_RUN_NAMESPACE": self.namespace,
            "DIASPORA_RUN_READY_TIMEOUT": str(START_TIMEOUT - 30),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    def start(self) -> DevstackRun:
        # What `make run` runs (`uv run --frozen devstack run`), from this environment.
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "devstack"), "run"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("Platform up") and not self.reported_ready.is_set():
                # At once, before reading on: what a newcomer's first request gets.
                self.at_ready = {p: _status(self.gateway + p) for p in THROUGH_THE_GATEWAY}
                self.apis_at_ready = {
                    name: _status(f"http://127.0.0.1:{self.ports[name]}/health/ready")
                    for name in READY_ON_THEIR_PORTS
                }
                self.reported_ready.set()
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_ready_or_exit(self, timeout: float = START_TIMEOUT) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.reported_ready.wait(0.5) or self.process.poll() is not None:
                return
        raise AssertionError(f"neither ready nor exited after {timeout}s:\n{self.output}")

    def wait_exit(self, timeout: float) -> int:
        assert self.process is not None
        code = self.process.wait(timeout=timeout)
        time.sleep(0.2)  # the reader thread takes the last lines
        return code

    def stop(self) -> int | None:
        """Ctrl-C, as a newcomer stops it."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.wait_exit(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def cleanup(self) -> None:
        layout = Layout(ports=self.ports, namespace=self.namespace)

        async def forget() -> None:
            for name in layout.databases():
                await drop_database(f"{self.infra.pg_url}/{name}")
            await delete_topics_with_prefix(self.infra.kafka_bootstrap, layout.topic_prefix)

        asyncio.run(forget())


@pytest.fixture
async def migrated_namespace(infra: stack.Endpoints, migrated_templates: dict[str, str]) -> str:
    """A namespace whose databases are already copies of the suite's migrated templates,
    for the tests of a start that fails: their `*-migrate` steps then have nothing to do
    (the module's platform migrates empty databases, as a newcomer's first run does).
    DevstackRun.cleanup drops them."""
    namespace = _namespace()
    layout = Layout(ports={}, namespace=namespace)
    for service in SERVICES:
        template = await migrated_template(infra, migrated_templates, service)
        await create_database(
            infra.pg_url, service, template=template, name=layout.db_prefix + service
        )
    return namespace


@pytest.fixture(scope="module")
def started(
    infra: stack.Endpoints, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevstackRun]:
    """One platform for the module: the readiness test and the README check share it."""
    run = DevstackRun(infra, tmp_path_factory.mktemp("make-run")).start()
    try:
        run.wait_ready_or_exit()
        yield run
    finally:
        run.stop()
        run.cleanup()


@pytest.mark.timeout(START_TIMEOUT + 120)
def test_platform_up_means_every_service_answers_through_the_gateway(
    started: DevstackRun,
) -> None:
    assert started.reported_ready.is_set(), f"it never said Platform up:\n{started.output}"
    assert started.at_ready == dict.fromkeys(THROUGH_THE_GATEWAY, 200), started.output
    assert started.apis_at_ready == dict.fromkeys(READY_ON_THEIR_PORTS, 200), started.output
    # It said it runs in development mode, and named what it was waiting for meanwhile.
    assert "DEVELOPMENT MODE" in started.output
    assert any(line.startswith("... running registry-migrate") for line in started.lines)


@pytest.mark.timeout(START_TIMEOUT + 600)
def test_every_readme_command_works_in_order(started: DevstackRun) -> None:
    assert started.reported_ready.is_set(), started.output
    # Addresses of `make run` in the README -> those of this platform.
    addresses = {
        f"127.0.0.1:{DEFAULT_PORTS[name]}": f"127.0.0.1:{port}"
        for name, port in started.ports.items()
    }
    env = {
        **started.env,
        "DIASPORA_IDP_PORT": str(started.ports["idp"]),
        "REGISTRY_URL": f"{started.gateway}/api/registry",
    }
    ran = run_readme(ROOT / "README.md", env=env, addresses=addresses)
    assert ran >= 15


def _listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.mark.timeout(START_TIMEOUT + 60)
def test_a_process_that_cannot_start_is_named_with_its_log_and_stops_everything(
    infra: stack.Endpoints, tmp_path: Path, migrated_namespace: str
) -> None:
    # Something else already listens on the mail catcher's port (it starts in a second or
    # two, where a service's API takes many: the same path, a shorter test).
    with _listening_socket() as taken:
        run = DevstackRun(infra, tmp_path, namespace=migrated_namespace)
        run.ports["mailbox"] = taken.getsockname()[1]
        run.start()
        try:
            code = run.wait_exit(timeout=START_TIMEOUT)
        finally:
            run.stop()
            run.cleanup()
    assert code != 0, run.output
    assert not run.reported_ready.is_set(), run.output
    assert "The platform did not start: mailbox exited with code" in run.output
    tail = run.output.split("The last", 1)[1]
    assert "address already in use" in tail, run.output
    # Everything else was stopped: nothing answers on the gateway's port any more.
    assert isinstance(_status(run.gateway + "/health"), str)


@pytest.mark.timeout(START_TIMEOUT)
def test_a_broken_setting_names_the_step_that_refused_it(
    infra: stack.Endpoints, tmp_path: Path, migrated_namespace: str
) -> None:
    run = DevstackRun(
        infra,
        tmp_path,
        namespace=migrated_namespace,
        extra_env={"MATCHING_KAFKA_REPLICATION_FACTOR": "three"},
    ).start()
    try:
        code = run.wait_exit(timeout=START_TIMEOUT)
    finally:
        run.stop()
        run.cleanup()
    assert code != 0, run.output
    assert "The platform did not start: matching-migrate failed with exit code" in run.output
    tail = run.output.split("The last", 1)[1]
    assert "kafka_replication_factor" in tail, run.output
    assert not run.reported_ready.is_set()
