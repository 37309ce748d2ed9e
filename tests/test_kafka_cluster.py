"""A three-broker cluster (same jars, three ports): kill one broker during a burst of
registrations; no acknowledged event is lost and the consumers carry on."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from diaspora_devstack.mailbox import Mailbox
from diaspora_devstack.testing import (
    PrivateKafka,
    ServiceProcess,
    api_command,
    free_port,
    read_topic,
    service_env,
    wait_until,
)
from diaspora_events.topics import REGISTRY_MEMBERS
from diaspora_identity.testing import LocalIssuer, officer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REGISTRATIONS = 150


@pytest.fixture
async def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[PrivateKafka]:
    monkeypatch.setenv("DIASPORA_KAFKA_HEAP", "-Xmx512m -Xms128m")
    brokers = PrivateKafka(tmp_path / "cluster", brokers=3)
    try:
        yield await brokers.start()
    finally:
        brokers.discard()


async def test_killing_a_broker_mid_burst_loses_no_acknowledged_event(
    cluster: PrivateKafka,
    registry_database: str,
    notifications_database: str,
    topic_prefix: str,
    mailbox: Mailbox,
    test_logs: Path,
    identity_provider: LocalIssuer,
) -> None:
    port = free_port()
    registry_env = service_env(
        "REGISTRY",
        database_url=registry_database,
        kafka=cluster.bootstrap,
        topic_prefix=topic_prefix,
        issuer=identity_provider,
        extra={"REGISTRY_KAFKA_REPLICATION_FACTOR": "3"},
    )
    notifications_env = service_env(
        "NOTIFICATIONS",
        database_url=notifications_database,
        kafka=cluster.bootstrap,
        topic_prefix=topic_prefix,
        issuer=identity_provider,
        # Persons' data keys from this test's registry (crypto-shredding).
        event_keys_from=f"http://127.0.0.1:{port}",
        extra={
            "NOTIFICATIONS_SMTP_PORT": str(mailbox.port),
            "NOTIFICATIONS_KAFKA_REPLICATION_FACTOR": "3",
        },
    )
    processes = [
        ServiceProcess(
            "registry-api",
            api_command("registry", port),
            registry_env,
            test_logs / "registry-api.log",
        ),
        ServiceProcess(
            "registry-relay", ["registry-relay"], registry_env, test_logs / "registry-relay.log"
        ),
        ServiceProcess(
            "notifications-worker",
            ["notifications-worker"],
            notifications_env,
            test_logs / "notifications-worker.log",
        ),
    ]
    for process in processes:
        process.start()
    base = f"http://127.0.0.1:{port}"
    addresses = [f"cluster.{n}@example.org" for n in range(REGISTRATIONS)]
    try:
        # Assisted registrations by an officer of the embassy in Niamey (residents of Niger).
        async with httpx.AsyncClient(
            base_url=base, timeout=30, headers=identity_provider.headers(officer("ne-niamey"))
        ) as client:

            async def registry_up() -> bool:
                try:
                    return (await client.get("/health/ready")).status_code == 200
                except httpx.HTTPError:
                    return False

            await wait_until(registry_up, timeout=90, message="registry API")

            async def burst() -> list[int]:
                statuses = []
                for start in range(0, REGISTRATIONS, 10):
                    responses = await asyncio.gather(
                        *(
                            client.post(
                                "/members",
                                json={
                                    "given_name": "Cluster",
                                    "family_name": "Test",
                                    "date_of_birth": "1984-05-05",
                                    "country_of_residence": "NE",
                                    "email": address,
                                    "phone": "+22790123456",
                                    "consent_recorded": {"method": "signed_form"},
                                },
                            )
                            for address in addresses[start : start + 10]
                        )
                    )
                    statuses += [r.status_code for r in responses]
                    await asyncio.sleep(0.15)
                return statuses

            async def kill_a_broker() -> None:
                await asyncio.sleep(1.0)
                await asyncio.to_thread(cluster.kill_node, 2)

            statuses, _ = await asyncio.gather(burst(), kill_a_broker())
        assert statuses == [201] * REGISTRATIONS

        def everyone_has_mail() -> bool:
            return {r for m in mailbox.messages for r in m.recipients} >= set(addresses)

        await wait_until(everyone_has_mail, timeout=120, message="every email")
        assert all(p.alive for p in processes), [p.log_tail() for p in processes]

        message_ids: dict[str, set[str]] = defaultdict(set)
        for mail in mailbox.messages:
            message_ids[mail.recipients[0]].add(mail.message_id)
        assert all(len(ids) == 1 for ids in message_ids.values())

        records = await read_topic(
            cluster.bootstrap,
            topic_prefix + REGISTRY_MEMBERS.name,
            expect=REGISTRATIONS,
            timeout=60,
        )
        # One event per registration, each about its own member; the addresses travel
        # sealed (crypto-shredding), so none is readable on the topic.
        members = {r.key for r in records}
        assert len(members) == REGISTRATIONS
        assert not any(a.encode() in (r.value or b"") for r in records for a in addresses)
    finally:
        for process in processes:
            process.stop()
