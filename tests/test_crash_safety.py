"""Crash safety: kill -9 the relay and the notifications worker in a burst of registrations."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from diaspora_devstack.testing import asyncpg_url, wait_consumed, wait_until
from diaspora_events.topics import REGISTRY_MEMBERS
from diaspora_identity.testing import officer
from notifications.bootstrap import CONSUMER_NAME as NOTIFICATIONS_CONSUMER
from tests.conftest import LocalPlatform

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REGISTRATIONS = 200
# A copy can only come from a sender killed after the SMTP server accepted a
# message and before its row was marked sent: at most one per concurrent sender.
EMAIL_SENDERS = 4


async def test_every_registration_gives_exactly_one_email_across_kill_9(
    platform: LocalPlatform,
) -> None:
    addresses = [f"crash.{n}@example.org" for n in range(REGISTRATIONS)]

    async def register_all(client: httpx.AsyncClient) -> list[int]:
        statuses = []
        for start in range(0, REGISTRATIONS, 10):
            batch = addresses[start : start + 10]
            responses = await asyncio.gather(
                *(
                    client.post(
                        "/members",
                        json={
                            "given_name": "Crash",
                            "family_name": f"Test{start}",
                            "date_of_birth": "1980-01-01",
                            "country_of_residence": "BJ",
                            "email": address,
                            "phone": "+2290190123456",
                            "consent_recorded": {"method": "signed_form"},
                        },
                    )
                    for address in batch
                )
            )
            statuses += [r.status_code for r in responses]
            await asyncio.sleep(0.2)
        return statuses

    async def crash_and_restart() -> None:
        await asyncio.sleep(1.0)
        platform.processes["registry-relay"].kill()
        await asyncio.sleep(0.7)
        platform.processes["notifications-worker"].kill()
        await asyncio.sleep(1.0)
        platform.restart("registry-relay")
        await asyncio.sleep(0.5)
        platform.restart("notifications-worker")

    # Assisted registrations by an officer of the embassy in Cotonou (residents of Benin).
    async with httpx.AsyncClient(
        base_url=platform.registry_url,
        timeout=30,
        headers=platform.issuer.headers(officer("bj-cotonou")),
    ) as client:
        statuses, _ = await asyncio.gather(register_all(client), crash_and_restart())
    assert statuses == [201] * REGISTRATIONS

    def everyone_has_mail() -> bool:
        received = {r for m in platform.mailbox.messages for r in m.recipients}
        return received >= set(addresses)

    await wait_until(everyone_has_mail, timeout=90, message="an email for every registration")
    # Anything doubled would have arrived once every event is published (the registry's
    # outbox), handled (the worker's group committed the end of registry.members) and
    # every delivery it queued is sent: then count.
    registry_engine = create_async_engine(asyncpg_url(platform.registry_database))
    notifications_engine = create_async_engine(asyncpg_url(platform.notifications_database))

    async def none_left(engine: AsyncEngine, query: str) -> bool:
        async with engine.connect() as conn:
            return (await conn.execute(text(query))).scalar_one() == 0

    try:
        await wait_until(
            lambda: none_left(
                registry_engine, "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            ),
            timeout=90,
            message="the registry's outbox published",
        )
        await wait_consumed(
            platform.kafka_bootstrap,
            platform.topic_prefix + NOTIFICATIONS_CONSUMER,
            [platform.topic_prefix + REGISTRY_MEMBERS.name],
            timeout=90,
        )
        await wait_until(
            lambda: none_left(
                notifications_engine, "SELECT count(*) FROM deliveries WHERE status = 'pending'"
            ),
            timeout=90,
            message="no delivery pending",
        )
    finally:
        await registry_engine.dispose()
        await notifications_engine.dispose()

    message_ids: dict[str, set[str]] = defaultdict(set)
    copies = 0
    for mail in platform.mailbox.messages:
        (recipient,) = mail.recipients
        if mail.message_id in message_ids[recipient]:
            copies += 1
        message_ids[recipient].add(mail.message_id)
    # None lost, none doubled: exactly one message per registration (the verification of
    # the address: the welcome waits for its confirmation).
    assert sorted(message_ids) == sorted(addresses)
    assert all(len(ids) == 1 for ids in message_ids.values())
    # A resent copy (same Message-ID, so mail clients show it once) is bounded.
    print(f"resent copies (same Message-ID): {copies}")
    assert copies <= EMAIL_SENDERS, f"{copies} resent copies"

    engine = create_async_engine(asyncpg_url(platform.notifications_database))
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT count(*) AS n, count(*) FILTER (WHERE status = 'sent') AS sent,"
                    " count(DISTINCT cause_event_id) AS events,"
                    " count(*) FILTER (WHERE template = 'contact_verification_email')"
                    " AS verifications FROM deliveries"
                )
            )
        ).one()
        inbox = (await conn.execute(text("SELECT count(*) FROM inbox"))).scalar_one()
    await engine.dispose()
    assert (rows.n, rows.sent, rows.events, rows.verifications) == (REGISTRATIONS,) * 4
    assert inbox == REGISTRATIONS
