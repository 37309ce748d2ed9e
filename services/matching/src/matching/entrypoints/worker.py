"""The matching worker (`matching-worker`): Kafka consumers, periodic jobs, outbox relay.

The consumers and jobs are built by ``matching.bootstrap``; this module runs them.

The relay elects one leader per database (PostgreSQL advisory lock), so replicas of
the worker share the consumers' partitions while one of them publishes the outbox.
"""

from __future__ import annotations

import asyncio

from diaspora_events.metrics import LagMonitor, broker_reachable
from diaspora_events.observability import setup_observability
from diaspora_events.outbox import OutboxRelay
from diaspora_events.runtime import (
    broker_dead_letter_sink,
    broker_task,
    make_broker,
    prepare_topics,
    run_until_stopped,
    subscribe,
)
from diaspora_service.health_server import health_task
from matching import SERVICE_NAME
from matching.bootstrap import Task, bootstrap, build_consumers, periodic_tasks
from matching.resources import Matching
from matching.tables import outbox


async def run(service: Matching | None = None, stop: asyncio.Event | None = None) -> None:
    service = service or bootstrap()
    settings = service.settings
    setup_observability(f"{SERVICE_NAME}-worker", json_logs=settings.json_logs)
    broker_ = make_broker(settings.kafka, client_id=f"{SERVICE_NAME}-worker")
    consumers = build_consumers(service, broker_dead_letter_sink(broker_))
    await prepare_topics(
        settings.kafka,
        consumers,
        prefix=settings.topic_prefix,
        replication_factor=settings.kafka_replication_factor,
    )
    for consumer in consumers:
        subscribe(broker_, consumer)
    monitors = [
        LagMonitor(
            bootstrap_servers=settings.kafka,
            group_id=consumer.group_id,
            consumer_name=consumer.name,
            topics=consumer.topics,
            stuck_after=settings.consumer_stuck_after_seconds,
        )
        for consumer in consumers
    ]

    relay = OutboxRelay(
        engine=service.engine,
        table=outbox,
        bootstrap_servers=settings.kafka,
        client_id=f"{SERVICE_NAME}-relay",
        topic_prefix=settings.topic_prefix,
    )

    async def consumers_not_stuck() -> bool:
        return not any(monitor.stuck for monitor in monitors)

    async def broker() -> bool:
        return await broker_reachable(settings.kafka)

    tasks: list[Task] = [
        broker_task(broker_),
        relay.run,
        *(monitor.run for monitor in monitors),
        *periodic_tasks(service),
    ]
    if settings.health_port:
        tasks.append(
            health_task(
                host=settings.http_host,
                port=settings.health_port,
                readiness={
                    "database": service.database_ready,
                    "broker": broker,
                    "consumer": consumers_not_stuck,
                    **(
                        {"keys": consumers[0].keys.available}
                        if consumers and consumers[0].keys
                        else {}
                    ),
                },
            )
        )
    try:
        await run_until_stopped(*tasks, stop=stop)
    finally:
        await service.close()


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
