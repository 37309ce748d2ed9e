"""The matching worker (`matching-worker`): Kafka consumers, periodic jobs, outbox relay.

The relay elects one leader per database (PostgreSQL advisory lock), so replicas of
the worker share the consumers' partitions while one of them publishes the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from datetime import date
from typing import Any

import structlog

from diaspora_events.consumer import DeadLetterSink, EventConsumer
from diaspora_events.outbox import OutboxRelay
from diaspora_service.worker import run_worker
from matching import SERVICE_NAME
from matching.adapters.orm import outbox
from matching.bootstrap import Matching, bootstrap
from matching.erasure import build_consumer as records_consumer
from matching.experts.consumer import build_consumer as experts_consumer
from matching.needs.service import expire_due

log = structlog.get_logger(__name__)

Task = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


def build_consumers(service: Matching, dead_letters: DeadLetterSink) -> list[EventConsumer]:
    """Every consumer of the service (one Kafka consumer group each)."""
    prefix = service.settings.topic_prefix
    # One cache of persons' data keys for the process's consumers (crypto-shredding).
    keys = service.key_settings.resolver(SERVICE_NAME) if service.key_settings else None
    consumers = [
        experts_consumer(sessions=service.sessions, dead_letters=dead_letters, topic_prefix=prefix),
        records_consumer(
            sessions=service.sessions,
            outbox=service.outbox,
            dead_letters=dead_letters,
            topic_prefix=prefix,
        ),
    ]
    for consumer in consumers:
        consumer.keys = keys
    return consumers


def periodic_tasks(service: Matching) -> list[Task]:
    """Jobs the worker runs on a timer."""
    return [expiry_task(service)]


def expiry_task(service: Matching) -> Task:
    """Expire needs past their date, at start and then every ``expiry_interval_seconds``."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            async with service.sessions() as session, session.begin():
                expired = await expire_due(session, service.outbox, today=date.today())
            if expired:
                log.info("needs_expired", count=len(expired))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), service.settings.expiry_interval_seconds)

    return run


async def run(service: Matching | None = None, stop: asyncio.Event | None = None) -> None:
    service = service or bootstrap()
    settings = service.settings
    relay = OutboxRelay(
        engine=service.engine,
        table=outbox,
        bootstrap_servers=settings.kafka,
        client_id=f"{SERVICE_NAME}-relay",
        topic_prefix=settings.topic_prefix,
    )
    try:
        await run_worker(
            service=SERVICE_NAME,
            settings=settings,
            consumers=lambda dead_letters: build_consumers(service, dead_letters),
            jobs=periodic_tasks(service),
            relay=relay,
            readiness={"database": service.database_ready},
            stop=stop,
        )
    finally:
        await service.close()


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
