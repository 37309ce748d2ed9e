"""The notifications worker: event consumer, channel senders, campaigns and outbox relay."""

from __future__ import annotations

import asyncio

from diaspora_events.consumer import DeadLetterSink, EventConsumer
from diaspora_events.outbox import OutboxRelay
from diaspora_events.runtime import Task, run_service
from diaspora_events.topics import REGISTRY_MEMBERS, with_prefix
from diaspora_service.worker import run_worker
from notifications import SERVICE_NAME
from notifications.adapters.orm import outbox
from notifications.bootstrap import Notifications, bootstrap
from notifications.campaigns import CampaignRunner
from notifications.email_sender import Clock, EmailSender, SmsSender, WorkSignal, utc_now
from notifications.handlers import CONSUMER_NAME, build_consumer
from notifications.sms import HttpSmsProvider, SmsProvider
from notifications.templates import seed_missing


class Fanout:
    """Wakes every channel's senders when new deliveries are queued."""

    def __init__(self, *events: WorkSignal) -> None:
        self._events = events

    def set(self) -> None:
        for event in self._events:
            event.set()


async def run(
    service: Notifications | None = None,
    stop: asyncio.Event | None = None,
    *,
    clock: Clock = utc_now,
    sms_provider: SmsProvider | None = None,
) -> None:
    service = service or bootstrap()
    settings = service.settings
    email_work, sms_work = WorkSignal(), WorkSignal()
    work = Fanout(email_work, sms_work)

    def consumers(dead_letters: DeadLetterSink) -> list[EventConsumer]:
        return [
            build_consumer(
                sessions=service.sessions,
                dead_letters=dead_letters,
                work_available=work,
                topic_prefix=settings.topic_prefix,
                outbox=service.outbox,
                available_channels=settings.available_channels,
                settings=settings,
                # Persons' data keys from the registry's key service (crypto-shredding).
                keys=service.key_settings.resolver(SERVICE_NAME) if service.key_settings else None,
            )
        ]

    try:
        async with service.sessions() as session, session.begin():
            await seed_missing(session)
        sender = EmailSender(
            settings=settings,
            sessions=service.sessions,
            outbox=service.outbox,
            work_available=email_work,
            clock=clock,
        )
        campaigns = CampaignRunner(
            settings=settings,
            sessions=service.sessions,
            outbox=service.outbox,
            work_available=work,
            clock=clock,
        )
        jobs: list[Task] = [sender.run, campaigns.run]
        if sms_provider is None and settings.sms_provider_url:
            sms_provider = HttpSmsProvider.from_settings(settings)
        if sms_provider is not None:
            sms = SmsSender(
                provider=sms_provider,
                settings=settings,
                sessions=service.sessions,
                outbox=service.outbox,
                work_available=sms_work,
                clock=clock,
            )
            jobs.append(sms.run)
        relay = OutboxRelay(
            engine=service.engine,
            table=outbox,
            bootstrap_servers=settings.kafka,
            client_id=f"{SERVICE_NAME}-relay",
            topic_prefix=settings.topic_prefix,
        )
        # Several consumers only where the traffic is (a registration is a welcome
        # email): each consumer is a group member with its own fetch loop and heartbeats.
        members_topic = with_prefix(REGISTRY_MEMBERS, settings.topic_prefix).name
        await run_worker(
            service=SERVICE_NAME,
            settings=settings,
            consumers=consumers,
            jobs=jobs,
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
