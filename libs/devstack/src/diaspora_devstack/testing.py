"""Helpers for integration tests against the real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

from diaspora_devstack import postgres
from diaspora_devstack.config import repo_root

if TYPE_CHECKING:
    from diaspora_identity.testing import LocalIssuer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def create_database(
    server_url: str, prefix: str, *, template: str | None = None, name: str | None = None
) -> str:
    """A new database, empty (with the platform's extensions) or a copy of ``template``
    (the URL of a database nobody is connected to); returns its URL. Named ``name``, or
    uniquely after ``prefix``."""
    name = name or unique_name(f"t_{prefix}")
    conn = await asyncpg.connect(f"{server_url}/postgres")
    try:
        if template is None:
            await conn.execute(f'CREATE DATABASE "{name}"')
        else:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template.rsplit("/", 1)[1]}"')
    finally:
        await conn.close()
    url = f"{server_url}/{name}"
    if template is None:
        await postgres.ensure_extensions(url)
    return url


async def drop_database(database_url: str) -> None:
    server_url, name = database_url.rsplit("/", 1)
    conn = await asyncpg.connect(f"{server_url}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def delete_topics_with_prefix(bootstrap: str, prefix: str) -> None:
    """Delete the topics a test created under its prefix (best effort: cleanup only)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-cleanup")
    try:
        await admin.start()
        names = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if names:
            await admin.delete_topics(names, timeout_ms=10_000)
    except Exception as error:  # a failed cleanup must not fail the test
        print(f"could not delete test topics {prefix}*: {error!r}", file=sys.stderr)
    finally:
        await admin.close()


def asyncpg_url(database_url: str) -> str:
    return database_url.replace("postgresql://", "postgresql+asyncpg://", 1)


def runtime_role(service_package: str) -> str:
    """The role a service's processes connect as (tests and `make run`): ``<service>_app``."""
    return f"{service_package}_app"


def app_url(database_url: str, service_package: str) -> str:
    """The same database, as the service's runtime role (insert-only on its audit table,
    not the owner; its password is its name: development and tests only)."""
    from diaspora_service.db_roles import with_role

    role = runtime_role(service_package)
    return with_role(database_url, role, role)


def migrate(service_package: str, database_url: str) -> None:
    """Apply a service's Alembic migrations as the owner (``database_url``'s role) and grant
    its runtime role (:func:`app_url`); call it outside the event loop's thread."""
    from diaspora_service.migrations import migrate_service

    module = importlib.import_module(f"{service_package}.entrypoints.migrate")
    migrate_service(
        module.MIGRATIONS,
        owner_url=asyncpg_url(database_url),
        runtime_url=asyncpg_url(app_url(database_url, service_package)),
        create_runtime_role=True,
    )


async def wait_until(
    predicate: Callable[[], Awaitable[bool]] | Callable[[], bool],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    message: str = "condition",
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(interval)


async def wait_consumed(
    bootstrap: str,
    group_id: str,
    topics: list[str],
    *,
    timeout: float = 30.0,
    interval: float = 0.2,
) -> None:
    """Wait until consumer group ``group_id`` has committed, on every partition of
    ``topics``, the end offset the partition has when this is called: every record
    published before the call was handled (a consumer of the platform commits a record's
    offset once its handler's transaction committed or it was dead-lettered).

    The outcome a test waits on before asserting that nothing (more) happened: a test
    that sleeps instead also passes when nothing was handled at all. Raises TimeoutError
    (with the partitions still behind) after ``timeout`` seconds. A topic that does not
    exist has no records and counts as consumed; ``topics`` must not be empty.
    """
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    from diaspora_events.kafka import topic_partitions

    if not topics:
        raise ValueError("wait_consumed needs at least one topic")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-wait-consumed")
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    try:
        await probe.start()
        try:
            partitions = await topic_partitions(probe, topics)
            ends = await probe.end_offsets(partitions) if partitions else {}
            deadline = time.monotonic() + timeout
            while True:
                committed = await admin.list_consumer_group_offsets(group_id)
                behind = {}
                for tp, end in ends.items():
                    meta = committed.get(tp)
                    done = meta.offset if meta is not None and meta.offset >= 0 else 0
                    if done < end:
                        behind[f"{tp.topic}[{tp.partition}]"] = (done, end)
                if not behind:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"timed out after {timeout}s waiting for consumer group {group_id!r}"
                        f" to commit the end of {topics}; (committed, end) still behind:"
                        f" {behind}"
                    )
                await asyncio.sleep(interval)
        finally:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await probe.stop()
    finally:
        await admin.close()


@dataclass
class ServiceProcess:
    """A service entry point run as a real OS process (so a test can kill -9 it)."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        bin_dir = str(Path(sys.executable).parent)
        env = {**os.environ, **self.env, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
        self.process = subprocess.Popen(
            self.command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=repo_root()
        )
        log.close()
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up, no flush: what a crash looks like."""
        if self.process is not None and self.alive:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is not None and self.alive:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


@contextlib.asynccontextmanager
async def serve_app(app: Any, *, port: int | None = None) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on loopback; yields its base URL."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started, timeout=20, message="uvicorn to start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class TcpForwarder:
    """A loopback port that forwards to ``target`` only while open: a dependency that is
    down (connections refused), then up, without stopping the shared server."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            pipe = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            sink.close()


def service_env(
    prefix: str,
    *,
    database_url: str,
    kafka: str,
    topic_prefix: str,
    issuer: LocalIssuer | None = None,
    event_keys_from: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment for a service process pointed at test infrastructure: it connects as
    its runtime role (:func:`app_url`), migrations and owner tools as ``database_url``'s.

    With ``issuer`` it trusts that issuer's tokens; with ``event_keys_from`` (the URL of
    the test's registry API) it fetches persons' data keys there (crypto-shredding), with
    client-credentials tokens from ``issuer``. ``extra`` comes last."""
    env = {
        f"{prefix}_DATABASE_URL": asyncpg_url(app_url(database_url, prefix.lower())),
        f"{prefix}_MIGRATION_DATABASE_URL": asyncpg_url(database_url),
        f"{prefix}_KAFKA_BOOTSTRAP": kafka,
        f"{prefix}_TOPIC_PREFIX": topic_prefix,
        f"{prefix}_ENVIRONMENT": "test",
    }
    if issuer is not None:
        env.update(issuer.service_env(prefix))
    if event_keys_from is not None:
        if issuer is None:
            raise ValueError("event_keys_from needs the issuer of the key service's tokens")
        env[f"{prefix}_EVENT_KEYS_URL"] = event_keys_from
        env[f"{prefix}_EVENT_KEYS_TOKEN_URL"] = issuer.issuer + "/token"
    env.update(extra or {})
    return env


def api_command(package: str, port: int) -> list[str]:
    """A service's HTTP API as a process of its own (:class:`ServiceProcess`): uvicorn on
    loopback, as deploy/local/processes.toml runs it."""
    return [
        "uvicorn",
        "--factory",
        f"{package}.entrypoints.http:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    ]


async def answers(url: str) -> bool:
    """Whether ``url`` answers 200 now (for :func:`wait_until`)."""
    import httpx

    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    expect: int,
    timeout: float = 30.0,
) -> list[Any]:
    """Read ``topic`` from the beginning of every partition until ``expect`` records
    arrived (or ``timeout``); returns aiokafka ConsumerRecords."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        partitions: set[int] | None = None
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                await consumer._client.force_metadata_update()
                await asyncio.sleep(0.2)
        if partitions is None:
            return records
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        while len(records) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for items in batch.values():
                records.extend(items)
        return records
    finally:
        await consumer.stop()


class PrivateKafka:
    """A broker or cluster of its own for tests that stop or kill brokers.

    Same jars and settings as the local broker, separate ports and storage.
    """

    def __init__(self, state: Path, *, brokers: int = 1) -> None:
        from diaspora_devstack.config import StackConfig

        base = StackConfig.from_env()
        self.brokers = brokers
        self.ports = [(free_port(), free_port()) for _ in range(brokers)]
        self.configs = [
            base.private(state, kafka_port=port, kafka_controller_port=controller)
            for port, controller in self.ports
        ]
        self.voters = ",".join(
            f"{n + 1}@127.0.0.1:{controller}" for n, (_port, controller) in enumerate(self.ports)
        )

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port, _controller in self.ports)

    def start_node(self, node: int) -> None:
        from diaspora_devstack import kafka

        cfg = self.configs[node - 1]
        kafka.start_node(
            cfg,
            node_id=node,
            voters=self.voters,
            brokers=self.brokers,
            cluster_id=kafka._cluster_id(cfg),
        )

    async def start(self) -> PrivateKafka:
        from diaspora_devstack import kafka

        for node in range(1, self.brokers + 1):
            self.start_node(node)
        await kafka.wait_ready(self.bootstrap, brokers=self.brokers, timeout=90)
        return self

    def kill_node(self, node: int) -> None:
        """SIGKILL one broker: a crash, not a shutdown."""
        from diaspora_devstack import kafka

        _kill_broker(kafka.pid_file(self.configs[node - 1], node))

    def stop(self) -> None:
        from diaspora_devstack import kafka

        for node in range(1, self.brokers + 1):
            kafka.stop_node(self.configs[node - 1], node)

    def discard(self) -> None:
        """Kill every broker: for a test's teardown, when the data goes away anyway (a
        graceful shutdown of a cluster that lost a broker waits on it for half a minute)."""
        for node in range(1, self.brokers + 1):
            self.kill_node(node)


def _kill_broker(pid_path: Path) -> None:
    """SIGKILL the broker whose pid ``pid_path`` holds, once it is gone forget the file."""
    from diaspora_devstack.procs import read_pid

    pid = read_pid(pid_path)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while read_pid(pid_path) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
    pid_path.unlink(missing_ok=True)


def make_tls_material(
    folder: Path, *, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> tuple[Path, Path]:
    """A private CA and a server certificate for ``hosts`` (PEM); returns the CA's
    certificate file and a file holding the server's key and certificate chain (what
    Kafka reads with ``ssl.keystore.type=PEM``)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "diaspora test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    keystore = folder / "server.pem"
    keystore.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + server.public_bytes(serialization.Encoding.PEM)
        + ca.public_bytes(serialization.Encoding.PEM)
    )
    keystore.chmod(0o600)
    return ca_file, keystore


class SecureKafka:
    """A private broker as deployments run it: a SASL_SSL listener (TLS, SCRAM-SHA-512),
    one SCRAM user per service created when its storage is formatted, StandardAuthorizer
    with ``allow.everyone.if.no.acl.found=false``. The controller listener stays
    plaintext on loopback (SCRAM cannot authenticate controllers: their credentials live
    in the metadata they serve); ``admin`` is the operators' super user."""

    ADMIN = "admin"

    def __init__(self, state: Path, users: Mapping[str, str]) -> None:
        from diaspora_devstack.config import StackConfig

        self.state = state
        self.port, self.controller_port = free_port(), free_port()
        self.cfg = StackConfig.from_env().private(
            state, kafka_port=self.port, kafka_controller_port=self.controller_port
        )
        self.admin_password = uuid.uuid4().hex
        self.users = {self.ADMIN: self.admin_password, **users}
        self.ca_file, self.keystore = make_tls_material(state / "tls")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def properties(self) -> str:
        from diaspora_devstack import kafka

        data = kafka.node_dir(self.cfg) / "data"
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                f"listeners=SASL_SSL://127.0.0.1:{self.port},"
                f"CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=SASL_SSL://127.0.0.1:{self.port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=SASL_SSL",
                "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
                "sasl.enabled.mechanisms=SCRAM-SHA-512",
                "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
                f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={self._admin_jaas}",
                "ssl.keystore.type=PEM",
                f"ssl.keystore.location={self.keystore}",
                "ssl.truststore.type=PEM",
                f"ssl.truststore.location={self.ca_file}",
                "ssl.endpoint.identification.algorithm=https",
                "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "allow.everyone.if.no.acl.found=false",
                # ANONYMOUS: the broker reaching its own controller over loopback.
                f"super.users=User:{self.ADMIN};User:ANONYMOUS",
                f"log.dirs={data}",
                "offsets.topic.replication.factor=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                "",
            ]
        )

    @property
    def _admin_jaas(self) -> str:
        return (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{self.ADMIN}" password="{self.admin_password}";'
        )

    def admin(self) -> Any:
        from diaspora_events.kafka import KafkaConnection

        return KafkaConnection(
            self.bootstrap,
            security_protocol="SASL_SSL",
            sasl_username=self.ADMIN,
            sasl_password=self.admin_password,
            ca_file=str(self.ca_file),
        )

    def connection(self, user: str, password: str | None = None) -> Any:
        from diaspora_events.kafka import KafkaConnection

        return KafkaConnection(
            self.bootstrap,
            security_protocol="SASL_SSL",
            sasl_username=user,
            sasl_password=password if password is not None else self.users[user],
            ca_file=str(self.ca_file),
        )

    async def start(self, *, timeout: float = 60.0) -> SecureKafka:
        from diaspora_devstack import kafka
        from diaspora_devstack.procs import start_detached

        kafka.fetch_jars(self.cfg)
        # The ACL tool compiles (once) while the broker starts.
        compiling = asyncio.create_task(asyncio.to_thread(kafka.acl_tool, self.cfg))
        home = kafka.node_dir(self.cfg)
        home.mkdir(parents=True, exist_ok=True)
        props = home / "server.properties"
        props.write_text(self.properties())
        scram = [
            f"--add-scram=SCRAM-SHA-512=[name={user},password={password}]"
            for user, password in self.users.items()
        ]
        kafka.format_storage(self.cfg, props, kafka.new_cluster_id(), extra=scram)
        start_detached(
            kafka._java(self.cfg, "kafka.Kafka", str(props)),
            pid_file=kafka.pid_file(self.cfg),
            log_file=self.cfg.log_dir / "kafka-1.log",
        )
        await kafka.wait_ready(
            self.bootstrap, timeout=timeout, security=self.admin().security_options()
        )
        await compiling
        return self

    def add_acls(self, lines: list[str]) -> None:
        """ACLs through the admin's SASL_SSL connection (kafka.add_acls)."""
        from diaspora_devstack import kafka

        client = self.state / "admin.properties"
        client.write_text(
            "\n".join(
                [
                    f"bootstrap.servers={self.bootstrap}",
                    "security.protocol=SASL_SSL",
                    "sasl.mechanism=SCRAM-SHA-512",
                    f"sasl.jaas.config={self._admin_jaas}",
                    "ssl.truststore.type=PEM",
                    f"ssl.truststore.location={self.ca_file}",
                    "",
                ]
            )
        )
        kafka.add_acls(self.cfg, client, lines)

    def discard(self) -> None:
        from diaspora_devstack import kafka

        _kill_broker(kafka.pid_file(self.cfg))


async def publish_outbox(
    engine: Any, table: Any, *, kafka_bootstrap: str, topic_prefix: str, client_id: str
) -> int:
    """Run an outbox relay, as a service's worker does, until every pending row of
    ``table`` is published; returns how many rows were pending."""
    from sqlalchemy import func, select

    from diaspora_events.kafka import ensure_topics
    from diaspora_events.outbox import OutboxRelay
    from diaspora_events.topics import ALL_TOPICS, with_prefix

    async def unpublished() -> int:
        async with engine.connect() as connection:
            found = await connection.execute(
                select(func.count()).select_from(table).where(table.c.published_at.is_(None))
            )
        return int(found.scalar_one())

    await ensure_topics(kafka_bootstrap, [with_prefix(t, topic_prefix) for t in ALL_TOPICS])
    pending = await unpublished()
    relay = OutboxRelay(
        engine=engine,
        table=table,
        bootstrap_servers=kafka_bootstrap,
        client_id=client_id,
        topic_prefix=topic_prefix,
        poll_interval=0.05,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:

        async def done() -> bool:
            return await unpublished() == 0

        await wait_until(done, timeout=30, message="the outbox to be published")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
    return pending


# ------------------------------------------------------------------------ fast tier


@dataclass
class DeadLetters:
    """A dead-letter sink that keeps what it is given (fast-tier tests: no broker)."""

    records: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(
        self, *, topic: str, key: bytes | None, value: bytes | None, headers: dict[str, str]
    ) -> None:
        self.records.append({"topic": topic, "key": key, "value": value, "headers": headers})


def event_record(
    event: Any,
    *,
    source: str = "/test",
    topic_prefix: str = "",
    event_id: uuid.UUID | None = None,
    offset: int = 0,
) -> Any:
    """The Kafka record a relay would publish for ``event`` (CloudEvents binary mode, keyed
    by its aggregate), as a consumer's ``handle_record`` takes it. The same ``event_id``
    twice is a redelivery."""
    from diaspora_events.cloudevents import encode
    from diaspora_events.consumer import Record

    _id, headers, value = encode(event, source=source, event_id=event_id)
    return Record(
        topic=topic_prefix + event.topic.name,
        partition=0,
        offset=offset,
        key=event.aggregate_id().encode(),
        value=value,
        headers=headers,
    )


async def publish_in_memory(
    broker: Any, event: Any, *, source: str = "/test", event_id: uuid.UUID | None = None
) -> uuid.UUID:
    """Publish ``event`` on a FastStream ``TestKafkaBroker`` (in memory, no Kafka) as the
    relay publishes it; its subscribers handle it before this returns. Returns its id."""
    from diaspora_events.cloudevents import encode

    found_id, headers, value = encode(event, source=source, event_id=event_id)
    await broker.publish(
        value, topic=event.topic.name, key=event.aggregate_id().encode(), headers=headers
    )
    return found_id


def identity_in_process(issuer: LocalIssuer, settings: Any) -> Any:
    """A service's :class:`~diaspora_identity.http.Identity` (its ``settings``' policy and
    jurisdictions) trusting ``issuer``, whose discovery document and keys it fetches
    through the issuer's ASGI app in this process: no port, no server."""
    import httpx

    from diaspora_identity.http import Identity
    from diaspora_identity.jwks import JwksCache
    from diaspora_identity.tokens import TokenVerifier, VerifierConfig

    built = Identity.from_settings(settings)
    keys = JwksCache(
        issuer=issuer.issuer,
        http=httpx.AsyncClient(transport=httpx.ASGITransport(app=issuer.asgi_app())),
        min_refresh_interval=0,
    )
    config = VerifierConfig(issuer=issuer.issuer, audience=issuer.audience)
    return Identity(
        verifier=TokenVerifier(config, keys),
        keys=keys,
        policy=built.policy,
        jurisdictions=built.jurisdictions,
    )


@contextlib.asynccontextmanager
async def app_in_process(app: Any, *, base_url: str = "http://service.test") -> AsyncIterator[Any]:
    """An httpx client of ``app`` run in this process (ASGI transport, no port), its
    lifespan run first as uvicorn runs it. The tasks its start-up leaves (a service's
    start-up chores) finish before the first request: on a rolled-back database they
    share the test's one connection, which two tasks must not use at once."""
    import httpx

    before = asyncio.all_tasks()
    async with app.router.lifespan_context(app):
        started = asyncio.all_tasks() - before
        if started:
            _done, pending = await asyncio.wait(started, timeout=30)
            if pending:
                raise RuntimeError(
                    f"start-up tasks still running after 30 s: {sorted(map(str, pending))};"
                    " switch off the service's background work for in-process tests"
                )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=base_url, timeout=30
        ) as client:
            yield client
