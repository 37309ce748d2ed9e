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

import structlog

from diaspora_events.consumer import DeadLetterSink, EventConsumer
from diaspora_service.worker import run_worker
from registry import SERVICE_NAME
from registry.bootstrap import bootstrap, stale_campaign, worker_consumers
from registry.resources import Registry
from registry.statistics.consumer import CONSUMER_NAME as READ_MODELS
from registry.statistics.projection import rebuild_counts

log = structlog.get_logger(__name__)


async def run(registry: Registry | None = None, stop: asyncio.Event | None = None) -> None:
    owned = registry is None
    registry = registry or bootstrap()
    settings = registry.settings
    # One cache of data keys for the process's consumers, read from the registry's own
    # key store (crypto-shredding): an erasure seen by either consumer drops the key.
    keys = registry.keys.resolver() if registry.keys is not None else None

    def consumers(dead_letters: DeadLetterSink) -> list[EventConsumer]:
        return worker_consumers(registry, dead_letters, keys)

    try:
        await run_worker(
            service=SERVICE_NAME,
            settings=settings,
            consumers=consumers,
            jobs=[stale_campaign(registry).run],
            readiness={"database": registry.database_ready},
            workers={READ_MODELS: settings.read_model_workers},
            stop=stop,
        )
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
