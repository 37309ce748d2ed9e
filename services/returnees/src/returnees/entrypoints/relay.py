"""The returnees outbox relay, as its own process: `returnees-relay`.

Creates the service's topics if missing, then publishes the outbox (one leader per
database through a PostgreSQL advisory lock; further copies wait as hot standbys).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from diaspora_events.kafka import ensure_topics
from diaspora_events.metrics import broker_reachable
from diaspora_events.observability import setup_observability
from diaspora_events.outbox import OutboxRelay
from diaspora_events.runtime import run_service, run_until_stopped
from diaspora_events.topics import ALL_TOPICS, with_prefix
from diaspora_service.health_server import health_task
from returnees import SERVICE_NAME
from returnees.bootstrap import bootstrap
from returnees.resources import Returnees
from returnees.tables import outbox


async def run(service: Returnees | None = None, stop: asyncio.Event | None = None) -> None:
    service = service or bootstrap()
    settings = service.settings
    setup_observability(f"{SERVICE_NAME}-relay", json_logs=settings.json_logs)
    prefix = settings.topic_prefix
    await ensure_topics(
        settings.kafka,
        [with_prefix(t, prefix) for t in ALL_TOPICS if t.owner == SERVICE_NAME],
        replication_factor=settings.kafka_replication_factor,
    )
    relay = OutboxRelay(
        engine=service.engine,
        table=outbox,
        bootstrap_servers=settings.kafka,
        client_id=f"{SERVICE_NAME}-relay",
        topic_prefix=prefix,
    )

    async def broker() -> bool:
        return await broker_reachable(settings.kafka)

    tasks: list[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = [relay.run]
    if settings.health_port:
        tasks.append(
            health_task(
                host=settings.http_host,
                port=settings.health_port,
                readiness={"database": service.database_ready, "broker": broker},
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
