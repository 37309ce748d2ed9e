"""A campaign survives kill -9 of a real notifications-worker: nobody gets two messages."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text
from uuid_utils.compat import uuid7

from diaspora_devstack.mailbox import Mailbox
from diaspora_devstack.testing import ServiceProcess, service_env, wait_until
from notifications.campaigns.tables import campaigns
from notifications.resources import Notifications
from notifications.tables import recipients

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AUDIENCE = 400
RATE = 100  # per second: the send lasts about four seconds
EMAIL_SENDERS = 4
# Campaign emails per sender transaction: a kill can resend at most this many per sender.
SEND_BATCH = 10


async def test_campaign_resumes_after_kill_9_without_double_sends(
    notifications: Notifications,
    notifications_database: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    mailbox: Mailbox,
    test_logs: Path,
) -> None:
    addresses = [f"camp.{n}@example.org" for n in range(AUDIENCE)]
    async with notifications.sessions() as session, session.begin():
        await session.execute(
            insert(recipients),
            [
                {
                    "member_id": uuid7(),
                    "given_name": f"Person{n}",
                    "family_name": "Campaign",
                    "email": address,
                    "language": "fr" if n % 2 else "en",
                    "country_of_residence": "SN",
                    # Verified addresses: nothing else is sent to an unverified one.
                    "email_verified_at": datetime.now(UTC),
                }
                for n, address in enumerate(addresses)
            ],
        )
        # Someone outside the segment.
        await session.execute(
            insert(recipients).values(
                member_id=uuid7(),
                given_name="Out",
                family_name="Side",
                email="outside@example.org",
                email_verified_at=datetime.now(UTC),
                country_of_residence="FR",
            )
        )
        campaign_id = uuid7()
        await session.execute(
            insert(campaigns).values(
                id=campaign_id,
                name="Awareness Senegal",
                template="migration_awareness",
                variables={"hotline": "+228 22 00 00 00"},
                segment={"countries": ["SN"]},
                rate_per_second=RATE,
                status="scheduled",
                send_at=datetime.now(UTC),
                created_by="test",
            )
        )
    env = service_env(
        "NOTIFICATIONS",
        database_url=notifications_database,
        kafka=kafka_bootstrap,
        topic_prefix=topic_prefix,
        extra={
            "NOTIFICATIONS_SMTP_PORT": str(mailbox.port),
            "NOTIFICATIONS_EMAIL_SENDERS": str(EMAIL_SENDERS),
            "NOTIFICATIONS_CAMPAIGN_SEND_BATCH": str(SEND_BATCH),
            "NOTIFICATIONS_JSON_LOGS": "false",
            "NOTIFICATIONS_CAMPAIGN_POLL_INTERVAL": "0.2",
        },
    )
    worker = ServiceProcess(
        "notifications-worker", ["notifications-worker"], env, test_logs / "worker.log"
    ).start()
    try:
        await wait_until(
            lambda: len(mailbox.messages) >= AUDIENCE // 4,
            timeout=60,
            message=f"the campaign under way\n{worker.log_tail()}",
        )
        worker.kill()  # kill -9, mid-campaign
        stopped_at = len(mailbox.messages)
        assert stopped_at < AUDIENCE, "the campaign finished before the crash"
        worker = ServiceProcess(
            "notifications-worker", ["notifications-worker"], env, test_logs / "worker-2.log"
        ).start()

        def everyone() -> bool:
            return {r for m in mailbox.messages for r in m.recipients} >= set(addresses)

        await wait_until(everyone, timeout=90, message=f"every recipient\n{worker.log_tail()}")

        async def completed() -> bool:
            async with notifications.sessions() as session:
                status = (
                    await session.execute(
                        select(campaigns.c.status).where(campaigns.c.id == campaign_id)
                    )
                ).scalar_one()
            return bool(status == "completed")

        await wait_until(completed, timeout=30, message="the campaign completed")
    finally:
        worker.stop()

    message_ids: dict[str, set[str]] = defaultdict(set)
    copies = 0
    for mail in mailbox.messages:
        (recipient,) = mail.recipients
        if mail.message_id in message_ids[recipient]:
            copies += 1
        message_ids[recipient].add(mail.message_id)
    assert sorted(message_ids) == sorted(addresses)  # nobody outside the segment
    # Exactly one message per person; a copy of the same message (same Message-ID)
    # only when a sender was killed between the server's acceptance and its commit:
    # at most one transaction's batch per sender.
    assert all(len(ids) == 1 for ids in message_ids.values())
    assert copies <= EMAIL_SENDERS * SEND_BATCH, copies
    print(f"killed after {stopped_at} mails; copies with the same Message-ID: {copies}")
    async with notifications.sessions() as session:
        audience = (
            await session.execute(
                text(
                    "SELECT status, count(*) FROM campaign_recipients "
                    "WHERE campaign_id = :c GROUP BY status"
                ),
                {"c": campaign_id},
            )
        ).all()
        sent = (
            await session.execute(
                text(
                    "SELECT count(*), count(DISTINCT recipient_id) FROM deliveries "
                    "WHERE campaign_id = :c AND status = 'sent'"
                ),
                {"c": campaign_id},
            )
        ).one()
    assert [tuple(r) for r in audience] == [("queued", AUDIENCE)]
    assert tuple(sent) == (AUDIENCE, AUDIENCE)
