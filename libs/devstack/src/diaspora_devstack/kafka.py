"""Apache Kafka in KRaft mode, run from its jars on Maven Central."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaClient

from diaspora_devstack.config import StackConfig
from diaspora_devstack.procs import read_pid, start_detached, stop_pid

DOCKER_HINT = (
    "Without Java and Maven, run the platform with Docker instead: `docker compose up` "
    "(see docker-compose.yml), or point the suite at an existing broker with "
    "DIASPORA_KAFKA_BOOTSTRAP=host:port."
)


class KafkaError(RuntimeError):
    pass


def pom(cfg: StackConfig) -> Path:
    return cfg.root / "deploy" / "local" / "kafka" / "pom.xml"


def kafka_version(cfg: StackConfig) -> str:
    found = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom(cfg).read_text())
    if not found:
        raise KafkaError(f"no kafka.version in {pom(cfg)}")
    return found.group(1)


def libs_dir(cfg: StackConfig) -> Path:
    return cfg.cache_dir / "kafka" / f"libs-{kafka_version(cfg)}"


def check_tools() -> None:
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        raise KafkaError(f"{' and '.join(missing)} not found on PATH. {DOCKER_HINT}")


def fetch_jars(cfg: StackConfig) -> Path:
    """Download the broker's jars once with Maven; later calls reuse the cache."""
    target = libs_dir(cfg)
    marker = target / ".complete"
    if marker.exists():
        return target
    check_tools()
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    result = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(pom(cfg)),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise KafkaError(f"Maven could not fetch the Kafka jars:\n{result.stdout}\n{result.stderr}")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    marker.touch()
    return target


def _java(cfg: StackConfig, main: str, *args: str) -> list[str]:
    log_config = cfg.root / "deploy" / "local" / "kafka" / "log4j2.properties"
    heap = os.environ.get("DIASPORA_KAFKA_HEAP", "-Xmx1g -Xms256m").split()
    return [
        "java",
        *heap,
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log_config}",
        "-cp",
        f"{libs_dir(cfg)}/*",
        main,
        *args,
    ]


def server_properties(
    *, node_id: int, port: int, controller_port: int, data: Path, voters: str, brokers: int = 1
) -> str:
    replication = min(3, brokers)
    return "\n".join(
        [
            "process.roles=broker,controller",
            f"node.id={node_id}",
            f"controller.quorum.voters={voters}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={data}",
            f"offsets.topic.replication.factor={replication}",
            f"transaction.state.log.replication.factor={replication}",
            f"transaction.state.log.min.isr={max(1, replication - 1)}",
            f"default.replication.factor={replication}",
            f"min.insync.replicas={max(1, replication - 1)}",
            "group.initial.rebalance.delay.ms=0",
            "num.partitions=6",
            # Topics are created explicitly from the topic registry, with their settings.
            "auto.create.topics.enable=false",
            "",
        ]
    )


def node_dir(cfg: StackConfig, node_id: int = 1) -> Path:
    return cfg.state / "kafka" / f"node-{node_id}"


def pid_file(cfg: StackConfig, node_id: int = 1) -> Path:
    return cfg.run_dir / f"kafka-{node_id}.pid"


def start_node(
    cfg: StackConfig,
    *,
    node_id: int = 1,
    port: int | None = None,
    controller_port: int | None = None,
    voters: str | None = None,
    brokers: int = 1,
    cluster_id: str | None = None,
) -> bool:
    """Start one broker (formatting its storage the first time); True if started now."""
    if read_pid(pid_file(cfg, node_id)) is not None:
        return False
    fetch_jars(cfg)
    port = port or cfg.kafka_port
    controller_port = controller_port or cfg.kafka_controller_port
    voters = voters or f"{node_id}@127.0.0.1:{controller_port}"
    home = node_dir(cfg, node_id)
    data = home / "data"
    home.mkdir(parents=True, exist_ok=True)
    props = home / "server.properties"
    props.write_text(
        server_properties(
            node_id=node_id,
            port=port,
            controller_port=controller_port,
            data=data,
            voters=voters,
            brokers=brokers,
        )
    )
    if not (data / "meta.properties").exists():
        format_storage(cfg, props, cluster_id or _cluster_id(cfg))
    start_detached(
        _java(cfg, "kafka.Kafka", str(props)),
        pid_file=pid_file(cfg, node_id),
        log_file=cfg.log_dir / f"kafka-{node_id}.log",
    )
    return True


def format_storage(
    cfg: StackConfig, props: Path, cluster_id: str, *, extra: Sequence[str] = ()
) -> None:
    """Format a node's storage (``log.dirs`` of ``props``) for the cluster; ``extra``:
    more arguments (``--add-scram 'SCRAM-SHA-512=[name=...,password=...]'``)."""
    result = subprocess.run(
        _java(
            cfg,
            "kafka.tools.StorageTool",
            "format",
            # "=": an id may start with "-" (older local ones do).
            f"--cluster-id={cluster_id}",
            "-c",
            str(props),
            "--ignore-formatted",
            *extra,
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise KafkaError(f"kafka storage format failed:\n{result.stdout}\n{result.stderr}")


def _cluster_id(cfg: StackConfig) -> str:
    id_file = cfg.state / "kafka" / "cluster.id"
    if not id_file.exists():
        id_file.parent.mkdir(parents=True, exist_ok=True)
        id_file.write_text(new_cluster_id())
    return id_file.read_text().strip()


def new_cluster_id() -> str:
    """A base64url-encoded UUID, as `StorageTool random-uuid` prints it. Like Kafka's
    own, never one that starts with "-": a command line would read it as an option
    (one new cluster in 64 failed to format before)."""
    import base64

    while True:
        found = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not found.startswith("-"):
            return found


def stop_node(cfg: StackConfig, node_id: int = 1) -> bool:
    return stop_pid(pid_file(cfg, node_id), timeout=30)


async def wait_ready(
    bootstrap: str,
    *,
    timeout: float = 60.0,
    brokers: int = 1,
    security: Mapping[str, Any] | None = None,
) -> None:
    """Wait until the cluster answers a metadata request with ``brokers`` brokers;
    ``security``: the client's security options (SASL_SSL: KafkaConnection's)."""
    import logging

    # Connection refusals are expected while the broker boots; keep them quiet.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last_error: BaseException | None = None
    while loop.time() < deadline:
        client = AIOKafkaClient(
            bootstrap_servers=bootstrap, request_timeout_ms=3000, **(security or {})
        )
        try:
            await client.bootstrap()
            metadata = await client.fetch_all_metadata()
            if len(metadata.brokers()) >= brokers and metadata.controller is not None:
                return
        except Exception as error:
            last_error = error
        finally:
            await client.close()
        await asyncio.sleep(0.3)
    raise KafkaError(f"Kafka at {bootstrap} did not answer metadata requests: {last_error!r}")


def acl_tool(cfg: StackConfig) -> Path:
    """Compile the ACL tool once (javac, against the broker's jars); its class folder."""
    import hashlib

    source = Path(__file__).with_name("java") / "KafkaAcls.java"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    target = cfg.cache_dir / "kafka" / f"acl-tool-{kafka_version(cfg)}-{digest}"
    if (target / "KafkaAcls.class").exists():
        return target
    fetch_jars(cfg)
    staging = target.with_name(target.name + f".partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    result = subprocess.run(
        ["javac", "-cp", f"{libs_dir(cfg)}/*", "-d", str(staging), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise KafkaError(f"compiling the ACL tool failed:\n{result.stdout}\n{result.stderr}")
    if not target.exists():
        staging.rename(target)
    shutil.rmtree(staging, ignore_errors=True)
    return target


def add_acls(cfg: StackConfig, client_properties: Path, acls: Sequence[str]) -> None:
    """Add ACLs through the Admin API (the broker's jars carry no kafka-acls tool): a
    small Java program (java/KafkaAcls.java), compiled once against the jars. ``acls``:
    lines of ``principal|resourceType|patternType|name|operation``, all ALLOW, any host."""
    classes = acl_tool(cfg)
    lines = client_properties.with_suffix(".acls")
    lines.write_text("\n".join(acls) + "\n")
    log_config = cfg.root / "deploy" / "local" / "kafka" / "log4j2.properties"
    result = subprocess.run(
        [
            "java",
            "-Xmx256m",
            "-XX:TieredStopAtLevel=1",
            f"-Dlog4j2.configurationFile={log_config}",
            "-cp",
            f"{libs_dir(cfg)}/*:{classes}",
            "KafkaAcls",
            str(client_properties),
            str(lines),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise KafkaError(f"adding ACLs failed:\n{result.stdout}\n{result.stderr}")
