"""The notifications worker: event consumer, channel senders, campaigns and outbox relay."""

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
    run_service,
    run_until_stopped,
    subscribe,
)
from diaspora_events.topics import REGISTRY_MEMBERS, with_prefix
from diaspora_service.health_server import health_task
from notifications import SERVICE_NAME
from notifications.bootstrap import bootstrap, build_worker_jobs, seed_templates
from notifications.deliveries.domain import Clock, utc_now
from notifications.deliveries.sms import SmsProvider
from notifications.resources import Notifications
from notifications.tables import outbox


async def run(
    service: Notifications | None = None,
    stop: asyncio.Event | None = None,
    *,
    clock: Clock = utc_now,
    sms_provider: SmsProvider | None = None,
) -> None:
    service = service or bootstrap()
    settings = service.settings
    setup_observability(f"{SERVICE_NAME}-worker", json_logs=settings.json_logs)
    broker_ = make_broker(settings.kafka, client_id=f"{SERVICE_NAME}-worker")
    jobs = build_worker_jobs(
        service,
        dead_letters=broker_dead_letter_sink(broker_),
        clock=clock,
        sms_provider=sms_provider,
    )
    consumer = jobs.consumer
    await prepare_topics(
        settings.kafka,
        [consumer],
        prefix=settings.topic_prefix,
        replication_factor=settings.kafka_replication_factor,
    )
    # Several consumers only where the traffic is (a registration is a welcome email):
    # each consumer is a group member with its own fetch loop and heartbeats.
    members_topic = with_prefix(REGISTRY_MEMBERS, settings.topic_prefix).name
    subscribe(broker_, consumer, workers={members_topic: settings.consumer_workers})
    await seed_templates(service)
    relay = OutboxRelay(
        engine=service.engine,
        table=outbox,
        bootstrap_servers=settings.kafka,
        client_id=f"{SERVICE_NAME}-relay",
        topic_prefix=settings.topic_prefix,
    )
    lag = LagMonitor(
        bootstrap_servers=settings.kafka,
        group_id=consumer.group_id,
        consumer_name=consumer.name,
        topics=consumer.topics,
        stuck_after=settings.consumer_stuck_after_seconds,
    )

    async def consumer_not_stuck() -> bool:
        return not lag.stuck

    async def broker() -> bool:
        return await broker_reachable(settings.kafka)

    email, *others = jobs.senders
    tasks = [broker_task(broker_), email.run, jobs.campaigns.run, relay.run, lag.run]
    tasks += [sender.run for sender in others]  # SMS, when a provider is configured
    if settings.health_port:
        tasks.append(
            health_task(
                host=settings.http_host,
                port=settings.health_port,
                readiness={
                    "database": service.database_ready,
                    "broker": broker,
                    "consumer": consumer_not_stuck,
                    **({"keys": consumer.keys.available} if consumer.keys else {}),
                },
            )
        )
    try:
        await run_until_stopped(*tasks, stop=stop)
    finally:
        await service.close()


def main() -> None:
    run_service(run())


if __name__ == "__main__":
    main()
