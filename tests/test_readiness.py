"""Readiness follows the broker: false within 10 s of losing it, true again after restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from diaspora_devstack.mailbox import Mailbox
from diaspora_devstack.testing import (
    PrivateKafka,
    ServiceProcess,
    free_port,
    service_env,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
async def private_kafka(tmp_path: Path) -> AsyncIterator[PrivateKafka]:
    cluster = PrivateKafka(tmp_path / "kafka", brokers=1)
    try:
        yield await cluster.start()
    finally:
        cluster.discard()


async def ready(url: str) -> bool | None:
    """True/False from /health/ready; None while the process does not answer."""
    try:
        async with httpx.AsyncClient(timeout=8) as client:
            response = await client.get(url)
    except httpx.HTTPError:
        return None
    return response.status_code == 200


async def test_worker_readiness_turns_false_without_the_broker_and_recovers(
    private_kafka: PrivateKafka,
    notifications_database: str,
    topic_prefix: str,
    mailbox: Mailbox,
    test_logs: Path,
) -> None:
    port = free_port()
    worker = ServiceProcess(
        "notifications-worker",
        ["notifications-worker"],
        service_env(
            "NOTIFICATIONS",
            database_url=notifications_database,
            kafka=private_kafka.bootstrap,
            topic_prefix=topic_prefix,
            extra={
                "NOTIFICATIONS_SMTP_PORT": str(mailbox.port),
                "NOTIFICATIONS_HEALTH_PORT": str(port),
            },
        ),
        test_logs / "worker.log",
    ).start()
    url = f"http://127.0.0.1:{port}/health/ready"
    try:
        await wait_until(lambda: _is(ready(url), True), timeout=60, message="ready at start")

        private_kafka.stop()
        stopped_at = time.monotonic()
        await wait_until(lambda: _is(ready(url), False), timeout=15, message="not ready")
        assert time.monotonic() - stopped_at < 10

        await asyncio.to_thread(private_kafka.start_node, 1)
        await wait_until(lambda: _is(ready(url), True), timeout=60, message="ready again")
        assert worker.alive, worker.log_tail()
    finally:
        worker.stop()


async def _is(value: object, expected: bool) -> bool:
    return await value is expected  # type: ignore[misc]
