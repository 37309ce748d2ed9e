"""Running consumers and relays: FastStream subscribers and a worker loop with clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any

import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_incrementing

from diaspora_events.consumer import DeadLetterSink, EventConsumer, record_from_kafka
from diaspora_events.kafka import Kafka, ensure_topics, faststream_security, kafka_connection

log = structlog.get_logger(__name__)

# A long-lived task of a process: runs until the event is set, then returns.
Task = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


def every(seconds: float, job: Callable[[], Coroutine[Any, Any, object]]) -> Task:
    """A periodic job as a task: ``job`` once at start, then every ``seconds`` until the
    worker stops. A stop ends the wait at once; a failing job fails the task (the worker
    then stops and its supervisor restarts it), as every other task of a worker."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            await job()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)

    return run


def run_service(main: Coroutine[Any, Any, None]) -> None:
    """Run a worker or relay process's main coroutine on uvloop, as uvicorn runs the
    HTTP APIs (uvloop comes with ``uvicorn[standard]``); on asyncio's own loop where
    uvloop is not installed. uvloop's loop takes about a third less CPU per socket
    operation, and these processes do little but database and broker round trips.
    """
    try:
        import uvloop
    except ImportError:  # pragma: no cover - every deployment image has it
        asyncio.run(main)
        return
    uvloop.run(main)


def make_broker(kafka: Kafka, *, client_id: str) -> KafkaBroker:
    # The broker's own producer only writes dead letters: same guarantees as the relay.
    connection = kafka_connection(kafka)
    return KafkaBroker(
        # FastStream takes a string as one host; a cluster is a list of "host:port".
        [s.strip() for s in connection.bootstrap_servers.split(",") if s.strip()],
        security=faststream_security(connection),
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        logger=None,
    )


def broker_dead_letter_sink(broker: KafkaBroker) -> DeadLetterSink:
    async def publish(
        *, topic: str, key: bytes | None, value: bytes | None, headers: dict[str, str]
    ) -> None:
        await broker.publish(value or b"", topic=topic, key=key, headers=headers)

    return publish


def subscribe(
    broker: KafkaBroker, consumer: EventConsumer, *, workers: int | Mapping[str, int] = 1
) -> None:
    """One FastStream subscriber per topic, in the consumer's group.

    ``NACK_ON_ERROR``: the offset is committed after the handler returns (its
    transaction committed, or the record was dead-lettered); if the handler
    raises (database or broker unreachable) the consumer seeks back and the
    record is delivered again.

    ``workers`` > 1 (for every topic, or per topic name in a mapping; 1 for topics it
    does not name): that many Kafka consumers for the topic, in the same group, each
    owning some of the topic's partitions (FastStream's "concurrent between
    partitions" subscriber). Records of one partition (so of one key) are still
    handled one at a time and in order, and each consumer commits only its own
    partitions' offsets after their transactions commit, so the inbox guarantees
    hold; records of different partitions are handled concurrently, so one waiting
    on the database (its commit's flush to disk) no longer holds up the others.
    """
    for topic in consumer.topics:
        count = workers.get(topic, 1) if isinstance(workers, Mapping) else workers
        options: dict[str, Any] = {"max_workers": count} if count > 1 else {}
        subscriber = broker.subscriber(
            topic,
            group_id=consumer.group_id,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            title=f"{consumer.name}:{topic}",
            **options,
        )

        async def on_message(message: KafkaMessage) -> None:
            await consumer.handle_record(record_from_kafka(message.raw_message))

        subscriber(on_message)


async def prepare_topics(
    bootstrap_servers: Kafka,
    consumers: Iterable[EventConsumer],
    *,
    prefix: str = "",
    replication_factor: int = 1,
) -> None:
    """Create the platform's topics and the consumers' dead-letter topics if missing."""
    from diaspora_events.topics import ALL_TOPICS, with_prefix

    dlqs = [c.dead_letter_topic for c in consumers]
    await ensure_topics(
        bootstrap_servers,
        [*(with_prefix(t, prefix) for t in ALL_TOPICS), *dlqs],
        replication_factor=replication_factor,
    )


async def run_until_stopped(
    *tasks: Task,
    stop: asyncio.Event | None = None,
) -> None:
    """Run long-lived tasks until SIGTERM/SIGINT (or ``stop``), then let them finish."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    running = [asyncio.create_task(task(stop)) for task in tasks]
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*running, stopper], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    failure: BaseException | None = None
    for task in done:
        if task is not stopper and not task.cancelled() and task.exception() is not None:
            failure = task.exception()
            log.error("worker_task_failed", error=repr(failure))
    await asyncio.gather(*running, return_exceptions=True)
    if failure is not None:
        # Exit non-zero so that the supervisor (systemd, Kubernetes, `make run`) restarts us.
        raise failure


def broker_task(broker: KafkaBroker, *, retry_after: float = 2.0) -> Task:
    """Start the FastStream broker (its subscribers' Kafka consumers) and keep it until
    ``stop``. A start that fails (the broker unreachable at that moment, even halfway
    through starting the consumers) is undone and tried again until it succeeds: the
    process stays up and its readiness says "broker" is missing meanwhile.
    """

    async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)

    def failed(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("broker_start_failed", attempt=state.attempt_number, error=repr(error))

    async def run(stop: asyncio.Event) -> None:
        async def start() -> None:
            if stop.is_set():
                return  # stopped before (or while waiting for) the next attempt
            try:
                await broker.start()
            except Exception:
                with contextlib.suppress(Exception):
                    await broker.stop()  # undo a start that failed halfway
                raise

        # retry_after, 2 x retry_after, ... up to 30 s between attempts, until started or
        # stopped (a stop ends the wait at once).
        await AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_incrementing(start=retry_after, increment=retry_after, max=30.0),
            sleep=lambda seconds: sleep_unless_stopped(stop, seconds),
            before_sleep=failed,
            reraise=True,
        )(start)
        try:
            await stop.wait()
        finally:
            await broker.stop()

    return run
