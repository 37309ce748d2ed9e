"""One worker process, wired the same way for every service.

A service's ``entrypoints/worker.py`` says what its worker runs (its consumers, its
periodic jobs, its outbox relay if the worker carries it, its readiness checks) and
calls :func:`run_worker`, which wires the rest:

- observability (structured logs, traces) under ``<service>-worker``;
- a FastStream broker whose producer writes the consumers' dead letters;
- the platform's topics and the consumers' dead-letter topics, created if missing;
- one subscription per consumer (``workers``: concurrent Kafka consumers per topic);
- a lag monitor per consumer (readiness ``consumer`` fails when one is stuck);
- the health server (``/health/live``, ``/health/ready``, ``/metrics``) when
  ``health_port`` is set, with the checks ``database`` (given), ``broker``,
  ``consumer`` and ``keys`` (when the consumers read sealed events);
- everything run until SIGTERM/SIGINT or ``stop``; a task that fails stops the
  others and is raised, so the supervisor restarts the process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from diaspora_events.consumer import DeadLetterSink, EventConsumer
from diaspora_events.metrics import LagMonitor, broker_reachable
from diaspora_events.observability import setup_observability
from diaspora_events.outbox import OutboxRelay
from diaspora_events.runtime import (
    Task,
    broker_dead_letter_sink,
    broker_task,
    make_broker,
    prepare_topics,
    run_until_stopped,
    subscribe,
)
from diaspora_service.app import ReadinessCheck
from diaspora_service.health_server import health_task
from diaspora_service.settings import ServiceSettings

ConsumersFactory = Callable[[DeadLetterSink], Sequence[EventConsumer]]


def outbox_relay(
    service: str, settings: ServiceSettings, engine: AsyncEngine, table: Table
) -> OutboxRelay:
    """The relay of a service's outbox ``table``: client ``<service>-relay``, the settings'
    broker and topic prefix (run by the worker, or by a relay process of its own)."""
    return OutboxRelay(
        engine=engine,
        table=table,
        bootstrap_servers=settings.kafka,
        client_id=f"{service}-relay",
        topic_prefix=settings.topic_prefix,
    )


async def run_worker(
    *,
    service: str,
    settings: ServiceSettings,
    consumers: ConsumersFactory,
    jobs: Sequence[Task] = (),
    relay: OutboxRelay | None = None,
    readiness: Mapping[str, ReadinessCheck] | None = None,
    workers: Mapping[str, int | Mapping[str, int]] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run a service's worker until stopped.

    ``consumers`` builds the consumers from the dead-letter sink (the broker's
    producer); ``workers`` maps a consumer's name to its concurrent Kafka consumers
    (a number for every topic, or per topic name; 1 when not named); ``readiness``
    adds checks before the worker's own (normally ``{"database": ...}``). The caller
    keeps ownership of its resources (engine, sessions): close them after this returns.
    """
    setup_observability(f"{service}-worker", json_logs=settings.json_logs)
    broker_ = make_broker(settings.kafka, client_id=f"{service}-worker")
    built = list(consumers(broker_dead_letter_sink(broker_)))
    await prepare_topics(
        settings.kafka,
        built,
        prefix=settings.topic_prefix,
        replication_factor=settings.kafka_replication_factor,
    )
    for consumer in built:
        subscribe(broker_, consumer, workers=(workers or {}).get(consumer.name, 1))
    monitors = [
        LagMonitor(
            bootstrap_servers=settings.kafka,
            group_id=consumer.group_id,
            consumer_name=consumer.name,
            topics=consumer.topics,
            stuck_after=settings.consumer_stuck_after_seconds,
        )
        for consumer in built
    ]

    async def consumers_not_stuck() -> bool:
        return not any(monitor.stuck for monitor in monitors)

    async def broker() -> bool:
        return await broker_reachable(settings.kafka)

    tasks: list[Task] = [broker_task(broker_), *(monitor.run for monitor in monitors)]
    if relay is not None:
        tasks.append(relay.run)
    tasks.extend(jobs)
    if settings.health_port:
        # One cache of persons' data keys serves the process's consumers (crypto-shredding).
        keys = next((c.keys for c in built if c.keys is not None), None)
        tasks.append(
            health_task(
                host=settings.http_host,
                port=settings.health_port,
                readiness={
                    **(readiness or {}),
                    "broker": broker,
                    "consumer": consumers_not_stuck,
                    **({"keys": keys.available} if keys is not None else {}),
                },
            )
        )
    await run_until_stopped(*tasks, stop=stop)
