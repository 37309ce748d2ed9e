"""The registry worker, as its own process: `registry-worker`.

- the ``registry-read-models`` consumer of the registry's own ``registry.members`` topic,
  keeping the statistics and search read models (registry.statistics, registry.search.service);
- the ``registry-access-log`` consumer of the other services' audit topics, so that a
  person's access log shows every service's reads (registry.access_log.consumer);
- the update campaign: every ``REGISTRY_STALE_CHECK_INTERVAL_SECONDS``, profiles not
  confirmed for ``REGISTRY_STALE_AFTER_MONTHS`` months are marked stale, with a
  ``registry.member.marked-stale`` event each through the outbox (registry.freshness.service).

The outbox relay stays its own process (`registry-relay`).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from diaspora_events.metrics import LagMonitor, broker_reachable
from diaspora_events.observability import setup_observability
from diaspora_events.runtime import (
    broker_dead_letter_sink,
    broker_task,
    make_broker,
    prepare_topics,
    run_until_stopped,
    subscribe,
)
from diaspora_service.health_server import health_task
from registry import SERVICE_NAME
from registry.bootstrap import bootstrap, worker_parts
from registry.resources import Registry
from registry.statistics.projection import rebuild_counts

log = structlog.get_logger(__name__)


async def run(registry: Registry | None = None, stop: asyncio.Event | None = None) -> None:
    owned = registry is None
    registry = registry or bootstrap()
    settings = registry.settings
    setup_observability(f"{SERVICE_NAME}-worker", json_logs=settings.json_logs)
    broker_ = make_broker(settings.kafka, client_id=f"{SERVICE_NAME}-worker")
    # One cache of data keys for the process's consumers, read from the registry's own
    # key store (crypto-shredding): an erasure seen by either consumer drops the key.
    keys = registry.keys.resolver() if registry.keys is not None else None
    parts = worker_parts(registry, broker_dead_letter_sink(broker_), keys)
    consumer, accesses = parts.read_models, parts.access_log
    await prepare_topics(
        settings.kafka,
        [consumer, accesses],
        prefix=settings.topic_prefix,
        replication_factor=settings.kafka_replication_factor,
    )
    subscribe(broker_, consumer, workers=settings.read_model_workers)
    subscribe(broker_, accesses)
    lags = [
        LagMonitor(
            bootstrap_servers=settings.kafka,
            group_id=c.group_id,
            consumer_name=c.name,
            topics=c.topics,
            stuck_after=settings.consumer_stuck_after_seconds,
        )
        for c in (consumer, accesses)
    ]

    async def consumer_not_stuck() -> bool:
        return not any(lag.stuck for lag in lags)

    async def broker() -> bool:
        return await broker_reachable(settings.kafka)

    tasks: list[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = [
        broker_task(broker_),
        parts.campaign.run,
        *(lag.run for lag in lags),
    ]
    if settings.health_port:
        tasks.append(
            health_task(
                host=settings.http_host,
                port=settings.health_port,
                readiness={
                    "database": registry.database_ready,
                    "broker": broker,
                    "consumer": consumer_not_stuck,
                    **({"keys": keys.available} if keys else {}),
                },
            )
        )
    try:
        await run_until_stopped(*tasks, stop=stop)
    finally:
        if owned:
            await registry.close()


async def recount() -> None:
    """`registry-worker recount`: recount the statistics counters from the member facts."""
    registry = bootstrap()
    try:
        async with registry.sessions() as session, session.begin():
            counters = await rebuild_counts(session)
        log.info("statistics_recounted", counters=counters)
    finally:
        await registry.close()


def main() -> None:
    if sys.argv[1:] == ["recount"]:
        asyncio.run(recount())
    elif sys.argv[1:]:
        sys.exit("usage: registry-worker [recount]")
    else:
        asyncio.run(run())


if __name__ == "__main__":
    main()
