"""The registry's outbox relay, as its own process: `registry-relay`."""

from __future__ import annotations

import asyncio

from diaspora_events.kafka import ensure_topics
from diaspora_events.observability import setup_observability
from diaspora_events.outbox import OutboxRelay
from diaspora_events.runtime import run_until_stopped
from diaspora_events.topics import ALL_TOPICS, with_prefix
from registry import SERVICE_NAME
from registry.adapters.orm import outbox
from registry.bootstrap import bootstrap


async def run() -> None:
    registry = bootstrap()
    setup_observability(f"{SERVICE_NAME}-relay", json_logs=registry.settings.json_logs)
    prefix = registry.settings.topic_prefix
    await ensure_topics(
        registry.settings.kafka_bootstrap,
        [with_prefix(t, prefix) for t in ALL_TOPICS if t.owner == SERVICE_NAME],
    )
    relay = OutboxRelay(
        engine=registry.engine,
        table=outbox,
        bootstrap_servers=registry.settings.kafka_bootstrap,
        client_id=f"{SERVICE_NAME}-relay",
        topic_prefix=prefix,
    )
    try:
        await run_until_stopped(relay.run)
    finally:
        await registry.close()


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
