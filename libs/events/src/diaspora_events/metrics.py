"""Prometheus metrics and health probes of the messaging plumbing.

Every process exposes these on ``/metrics``: the outbox backlog and the age of
its oldest unsent row, publish counts, consumer outcomes, dead letters and lag.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable

import structlog
from aiokafka import AIOKafkaClient, AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import Counter, Gauge

from diaspora_events.kafka import Kafka, client_options, topic_partitions

log = structlog.get_logger(__name__)

OUTBOX_PUBLISHED = Counter(
    "outbox_published_events", "Events published from the outbox to Kafka", ["table"]
)
OUTBOX_PUBLISH_FAILURES = Counter(
    "outbox_publish_failures", "Outbox batches that failed to publish (retried)", ["table"]
)
OUTBOX_BACKLOG = Gauge("outbox_unpublished_rows", "Outbox rows not yet published", ["table"])
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_unpublished_age_seconds", "Age of the oldest unpublished outbox row", ["table"]
)
CONSUMER_RECORDS = Counter(
    "consumer_records", "Records handled by a consumer, by outcome", ["consumer", "outcome"]
)
CONSUMER_DEAD_LETTERS = Counter(
    "consumer_dead_letters", "Records sent to the consumer's dead-letter topic", ["consumer"]
)
CONSUMER_LAG = Gauge(
    "consumer_lag_records", "Records in the topic not yet committed by the group", ["consumer"]
)


async def broker_reachable(bootstrap_servers: Kafka, *, timeout: float = 3.0) -> bool:
    """True if the cluster answers a metadata request (not just an open port)."""
    client = AIOKafkaClient(**client_options(bootstrap_servers), request_timeout_ms=2000)
    try:
        async with asyncio.timeout(timeout):
            await client.bootstrap()
            metadata = await client.fetch_all_metadata()
            return len(metadata.brokers()) > 0
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await client.close()


class LagMonitor:
    """Measures a consumer group's lag and whether it is stuck.

    Stuck: lag exists and the committed offsets have not moved for
    ``stuck_after`` seconds. An orchestrator restarts a process whose readiness
    reports that.
    """

    def __init__(
        self,
        *,
        bootstrap_servers: Kafka,
        group_id: str,
        consumer_name: str,
        topics: Iterable[str],
        stuck_after: float = 60.0,
        interval: float = 5.0,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._group = group_id
        self._name = consumer_name
        self._topics = list(topics)
        self._stuck_after = stuck_after
        self._interval = interval
        self.lag: int | None = None
        self._committed_total: int | None = None
        self._last_progress = time.monotonic()

    @property
    def stuck(self) -> bool:
        return bool(self.lag) and time.monotonic() - self._last_progress > self._stuck_after

    async def measure(self, admin: AIOKafkaAdminClient, probe: AIOKafkaConsumer) -> int:
        partitions = await topic_partitions(probe, self._topics)
        if not partitions:
            return 0
        ends = await probe.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(self._group)
        lag = 0
        total = 0
        for tp in partitions:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            total += done
            lag += max(0, ends[tp] - done)
        if self._committed_total is None or total != self._committed_total or lag == 0:
            self._last_progress = time.monotonic()
        self._committed_total = total
        return lag

    async def run(self, stop: asyncio.Event) -> None:
        # Long-lived clients: aiokafka's consumer is costly to start and its stop()
        # can surface an internal task's cancellation, so it is stopped once, at the end.
        admin = AIOKafkaAdminClient(**client_options(self._bootstrap), request_timeout_ms=3000)
        probe = AIOKafkaConsumer(**client_options(self._bootstrap), request_timeout_ms=3000)
        started = False
        try:
            while not stop.is_set():
                try:
                    if not started:
                        await admin.start()
                        await probe.start()
                        started = True
                    self.lag = await self.measure(admin, probe)
                    CONSUMER_LAG.labels(self._name).set(self.lag)
                except Exception as error:
                    log.warning("lag_measure_failed", consumer=self._name, error=repr(error))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self._interval)
        finally:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await probe.stop()
            with contextlib.suppress(Exception):
                await admin.close()
