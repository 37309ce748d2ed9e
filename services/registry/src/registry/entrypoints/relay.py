"""The registry's outbox relay, as its own process: `registry-relay`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from diaspora_events.kafka import ensure_topics
from diaspora_events.metrics import broker_reachable
from diaspora_events.observability import setup_observability
from diaspora_events.runtime import run_service, run_until_stopped
from diaspora_events.topics import ALL_TOPICS, with_prefix
from diaspora_service.health_server import health_task
from diaspora_service.worker import outbox_relay
from registry import SERVICE_NAME
from registry.bootstrap import bootstrap
from registry.tables import outbox


async def run() -> None:
    registry = bootstrap()
    settings = registry.settings
    setup_observability(f"{SERVICE_NAME}-relay", json_logs=settings.json_logs)
    prefix = settings.topic_prefix
    await ensure_topics(
        settings.kafka,
        [with_prefix(t, prefix) for t in ALL_TOPICS if t.owner == SERVICE_NAME],
        replication_factor=settings.kafka_replication_factor,
    )
    relay = outbox_relay(SERVICE_NAME, settings, registry.engine, outbox)

    async def broker() -> bool:
        return await broker_reachable(settings.kafka)

    tasks: list[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = [relay.run]
    if settings.health_port:
        tasks.append(
            health_task(
                host=settings.http_host,
                port=settings.health_port,
                readiness={"database": registry.database_ready, "broker": broker},
            )
        )
    try:
        await run_until_stopped(*tasks)
    finally:
        await registry.close()


def main() -> None:
    run_service(run())


if __name__ == "__main__":
    main()
