"""The returnees worker (`returnees-worker`): the people read model's consumer of
``registry.members`` (and the features' consumers) and the periodic jobs. The outbox is
published by `returnees-relay`.

The consumers and the jobs are built by ``returnees.bootstrap``; this module runs them.
"""

from __future__ import annotations

import asyncio

from diaspora_events.runtime import run_service
from diaspora_service.worker import run_worker
from returnees import SERVICE_NAME
from returnees.bootstrap import Clock, bootstrap, build_consumers, periodic_tasks, utc_now
from returnees.resources import Returnees


async def run(
    service: Returnees | None = None,
    stop: asyncio.Event | None = None,
    *,
    clock: Clock = utc_now,
) -> None:
    service = service or bootstrap()
    try:
        await run_worker(
            service=SERVICE_NAME,
            settings=service.settings,
            consumers=lambda dead_letters: build_consumers(service, dead_letters),
            jobs=periodic_tasks(service, clock),
            readiness={"database": service.database_ready},
            stop=stop,
        )
    finally:
        await service.close()


def main() -> None:
    run_service(run())


if __name__ == "__main__":
    main()
