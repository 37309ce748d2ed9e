"""The notifications worker: event consumer, email senders and outbox relay in one process."""

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
from notifications import SERVICE_NAME
from notifications.adapters.orm import outbox
from notifications.bootstrap import Notifications, bootstrap
from notifications.email_sender import EmailSender
from notifications.handlers import build_consumer


async def run(service: Notifications | None = None, stop: asyncio.Event | None = None) -> None:
    service = service or bootstrap()
    settings = service.settings
    setup_observability(f"{SERVICE_NAME}-worker", json_logs=settings.json_logs)
    broker_ = make_broker(settings.kafka_bootstrap, client_id=f"{SERVICE_NAME}-worker")
    work = asyncio.Event()
    consumer = build_consumer(
        sessions=service.sessions,
        dead_letters=broker_dead_letter_sink(broker_),
        work_available=work,
        topic_prefix=settings.topic_prefix,
    )
    await prepare_topics(
        settings.kafka_bootstrap,
        [consumer],
        prefix=settings.topic_prefix,
        replication_factor=settings.kafka_replication_factor,
    )
    subscribe(broker_, consumer)
    sender = EmailSender(
        settings=settings, sessions=service.sessions, outbox=service.outbox, work_available=work
    )
    relay = OutboxRelay(
        engine=service.engine,
        table=outbox,
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=f"{SERVICE_NAME}-relay",
        topic_prefix=settings.topic_prefix,
    )
    lag = LagMonitor(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=consumer.group_id,
        consumer_name=consumer.name,
        topics=consumer.topics,
        stuck_after=settings.consumer_stuck_after_seconds,
    )

    async def consumer_not_stuck() -> bool:
        return not lag.stuck

    async def broker() -> bool:
        return await broker_reachable(settings.kafka_bootstrap)

    tasks = [broker_task(broker_), sender.run, relay.run, lag.run]
    if settings.health_port:
        tasks.append(
            health_task(
                host=settings.http_host,
                port=settings.health_port,
                readiness={
                    "database": service.database_ready,
                    "broker": broker,
                    "consumer": consumer_not_stuck,
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
