"""wait_consumed against the real broker: it returns only once the group committed the end."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from diaspora_devstack.testing import unique_name, wait_consumed
from diaspora_events.kafka import ensure_topics
from diaspora_events.topics import Topic

pytestmark = pytest.mark.integration


async def _consume_and_commit(bootstrap: str, topic: str, group_id: str, count: int) -> None:
    """Read ``count`` records as ``group_id`` and commit just past the last one read."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=1,
    )
    await consumer.start()
    try:
        for _ in range(count):
            record = await consumer.getone()
            assert record.topic == topic
        await consumer.commit()
    finally:
        await consumer.stop()


async def test_waits_until_the_group_committed_the_end_of_every_partition(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = topic_prefix + "waited"
    await ensure_topics(kafka_bootstrap, [Topic(name=topic, owner="test", description="t")])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for n in range(3):
            # One partition: the records are read in order, so committing after two of
            # them leaves the third behind.
            await producer.send_and_wait(topic, f"record {n}".encode(), partition=0)
    finally:
        await producer.stop()
    group = unique_name(topic_prefix + "group")

    # A group that has consumed nothing is behind.
    with pytest.raises(TimeoutError, match="still behind") as nothing:
        await wait_consumed(kafka_bootstrap, group, [topic], timeout=1.0)
    assert f"{topic}[0]" in str(nothing.value)
    assert "(0, 3)" in str(nothing.value)

    # Two of three committed: still behind.
    await _consume_and_commit(kafka_bootstrap, topic, group, 2)
    with pytest.raises(TimeoutError) as partly:
        await wait_consumed(kafka_bootstrap, group, [topic], timeout=1.0)
    assert "(2, 3)" in str(partly.value)

    # All committed: returns.
    await _consume_and_commit(kafka_bootstrap, topic, group, 1)
    await wait_consumed(kafka_bootstrap, group, [topic], timeout=10.0)


async def test_a_topic_that_does_not_exist_has_nothing_to_consume(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    await wait_consumed(
        kafka_bootstrap, topic_prefix + "nobody", [topic_prefix + "missing"], timeout=5.0
    )
    with pytest.raises(ValueError, match="at least one topic"):
        await wait_consumed(kafka_bootstrap, topic_prefix + "nobody", [], timeout=1.0)
