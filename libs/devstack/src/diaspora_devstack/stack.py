"""Bring the local infrastructure up and down: PostgreSQL and one Kafka broker."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

from diaspora_devstack import kafka, postgres
from diaspora_devstack.config import StackConfig


@dataclass(frozen=True)
class Endpoints:
    """Where the infrastructure answers; given by the environment or started locally."""

    pg_url: str
    kafka_bootstrap: str
    external: bool

    def as_env(self) -> dict[str, str]:
        return {"DIASPORA_PG_URL": self.pg_url, "DIASPORA_KAFKA_BOOTSTRAP": self.kafka_bootstrap}


def external_endpoints() -> Endpoints | None:
    """Infrastructure provided from outside (CI service containers, testcontainers, ...)."""
    pg = os.environ.get("DIASPORA_PG_URL")
    bootstrap = os.environ.get("DIASPORA_KAFKA_BOOTSTRAP")
    if pg and bootstrap:
        return Endpoints(pg_url=pg.rstrip("/"), kafka_bootstrap=bootstrap, external=True)
    return None


LOCAL_KAFKA_READY_SECONDS = 240.0


@contextlib.contextmanager
def _one_at_a_time(cfg: StackConfig) -> Iterator[None]:
    """Callers at the same time (the suite's parallel test processes, two terminals)
    start and prepare the stack one after the other: the next finds it running and
    its databases created, instead of racing to create them."""
    cfg.state.mkdir(parents=True, exist_ok=True)
    with (cfg.state / "up.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def up(cfg: StackConfig | None = None) -> tuple[Endpoints, list[str]]:
    """Start what is not running yet; returns the endpoints and what this call started."""
    cfg = cfg or StackConfig.from_env()
    with _one_at_a_time(cfg):
        return _up(cfg)


def _up(cfg: StackConfig) -> tuple[Endpoints, list[str]]:
    found = external_endpoints()
    if found is not None:
        asyncio.run(_wait_and_prepare(found))
        return found, []
    started: list[str] = []
    if postgres.start(cfg):
        started.append("postgres")
    if kafka.start_node(cfg):
        started.append("kafka")
    endpoints = Endpoints(pg_url=cfg.pg_url, kafka_bootstrap=cfg.kafka_bootstrap, external=False)
    try:
        # A broker loads every partition's log before it answers: minutes when its data
        # folder holds thousands of them.
        asyncio.run(_wait_and_prepare(endpoints, kafka_timeout=LOCAL_KAFKA_READY_SECONDS))
    except kafka.KafkaError as error:
        raise kafka.KafkaError(
            f"{error}. The broker's log is {cfg.log_dir / 'kafka-1.log'}; a broker whose data "
            f"folder ({cfg.state / 'kafka'}) holds many partitions (old test or bench topics) "
            "takes long to load them: wait and run `devstack up` again, or reset local Kafka "
            "data with `devstack down` and removing that folder."
        ) from error
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    (cfg.run_dir / "endpoints.json").write_text(json.dumps(endpoints.as_env()))
    return endpoints, started


async def _wait_and_prepare(endpoints: Endpoints, *, kafka_timeout: float = 60.0) -> None:
    await asyncio.gather(
        postgres.wait_ready(endpoints.pg_url),
        kafka.wait_ready(endpoints.kafka_bootstrap, timeout=kafka_timeout),
    )
    await postgres.ensure_databases(endpoints.pg_url)


def down(cfg: StackConfig | None = None) -> list[str]:
    cfg = cfg or StackConfig.from_env()
    stopped = []
    if kafka.stop_node(cfg):
        stopped.append("kafka")
    if postgres.stop(cfg):
        stopped.append("postgres")
    return stopped


def status(cfg: StackConfig | None = None) -> dict[str, bool]:
    from diaspora_devstack.procs import read_pid

    cfg = cfg or StackConfig.from_env()
    return {
        "postgres": postgres.is_running(cfg),
        "kafka": read_pid(kafka.pid_file(cfg)) is not None,
    }
