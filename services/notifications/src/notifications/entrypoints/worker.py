"""The notifications worker: event consumer, channel senders, campaigns and outbox relay.

The consumer, senders and campaign runner are built by ``notifications.bootstrap``;
this module runs them with the platform's worker runtime.
"""

from __future__ import annotations

import asyncio

from diaspora_events.runtime import run_service
from diaspora_events.topics import REGISTRY_MEMBERS, with_prefix
from diaspora_service.worker import outbox_relay, run_worker
from notifications import SERVICE_NAME
from notifications.bootstrap import CONSUMER_NAME, bootstrap, build_worker_jobs, seed_templates
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
    try:
        await seed_templates(service)
        jobs = build_worker_jobs(service, clock=clock, sms_provider=sms_provider)
        relay = outbox_relay(SERVICE_NAME, settings, service.engine, outbox)
        # Several consumers only where the traffic is (a registration is a welcome
        # email): each consumer is a group member with its own fetch loop and heartbeats.
        members_topic = with_prefix(REGISTRY_MEMBERS, settings.topic_prefix).name
        await run_worker(
            service=SERVICE_NAME,
            settings=settings,
            consumers=jobs.consumers,
            jobs=jobs.tasks,
            relay=relay,
            readiness={"database": service.database_ready},
            workers={CONSUMER_NAME: {members_topic: settings.consumer_workers}},
            stop=stop,
        )
    finally:
        await service.close()


def main() -> None:
    run_service(run())


if __name__ == "__main__":
    main()
