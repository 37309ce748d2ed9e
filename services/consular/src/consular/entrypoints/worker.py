"""The consular worker (`consular-worker`): the applicants read model's consumer of
``registry.members`` and the SLA job. The outbox is published by `consular-relay`.

The consumer and the job are built by ``consular.bootstrap``; this module runs them.
"""

from __future__ import annotations

import asyncio

from consular import SERVICE_NAME
from consular.bootstrap import Clock, bootstrap, build_consumers, periodic_tasks, utc_now
from consular.resources import Consular
from diaspora_events.runtime import run_service
from diaspora_service.worker import run_worker


async def run(
    service: Consular | None = None,
    stop: asyncio.Event | None = None,
    *,
    clock: Clock = utc_now,
) -> None:
    service = service or bootstrap(signing=False)
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
