"""The matching worker (`matching-worker`): Kafka consumers, periodic jobs, outbox relay.

The consumers and jobs are built by ``matching.bootstrap``; this module runs them.

The relay elects one leader per database (PostgreSQL advisory lock), so replicas of
the worker share the consumers' partitions while one of them publishes the outbox.
"""

from __future__ import annotations

import asyncio

from diaspora_service.worker import outbox_relay, run_worker
from matching import SERVICE_NAME
from matching.bootstrap import bootstrap, build_consumers, periodic_tasks
from matching.resources import Matching
from matching.tables import outbox


async def run(service: Matching | None = None, stop: asyncio.Event | None = None) -> None:
    service = service or bootstrap()
    settings = service.settings
    relay = outbox_relay(SERVICE_NAME, settings, service.engine, outbox)
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
