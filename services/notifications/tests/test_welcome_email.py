"""The notifications worker against the real database, broker and an SMTP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from notifications_testing import (
    confirm_email,
    deliveries_settled,
    publish,
    registered,
    wait_members_consumed,
)
from sqlalchemy import func, select, update

from diaspora_devstack.mailbox import Mailbox
from diaspora_devstack.testing import read_topic, wait_until
from diaspora_events.cloudevents import decode, headers_from_kafka
from diaspora_events.topics import NOTIFICATIONS_DELIVERIES, REGISTRY_MEMBERS
from notifications.contacts.verification import welcome_if_due
from notifications.deliveries.tables import deliveries
from notifications.entrypoints.worker import run
from notifications.resources import Notifications
from notifications.tables import recipients

pytestmark = pytest.mark.integration


@pytest.fixture
async def worker(notifications: Notifications) -> AsyncIterator[Notifications]:
    stop = asyncio.Event()
    task = asyncio.create_task(run(notifications, stop))
    yield notifications
    stop.set()
    await asyncio.wait_for(task, timeout=30)


async def statuses(service: Notifications) -> list[str]:
    async with service.sessions() as session:
        return [r.status for r in await session.execute(select(deliveries.c.status))]


async def test_welcome_email_in_the_persons_language_sent_once_per_event(
    worker: Notifications, kafka_bootstrap: str, topic_prefix: str, mailbox: Mailbox
) -> None:
    topic = topic_prefix + REGISTRY_MEMBERS.name
    french = registered("Kossi", "kossi@example.org", "fr")
    english = registered("Ama", "ama@example.org", "en")
    # Each event arrives three times, as after a relay crash: one email each.
    await publish(kafka_bootstrap, topic, french, english, times=3)
    # The first email of each is the verification of the address (one per registration);
    # the welcome follows the confirmation of its link, once.
    await wait_until(lambda: len(mailbox.messages) >= 2, timeout=30, message="two emails")
    # Every copy was handled (the group committed the end of the topic) and every
    # delivery they queued was sent: a duplicate would be in the mailbox by now.
    await wait_members_consumed(worker)
    await wait_until(lambda: deliveries_settled(worker), timeout=30, message="deliveries sent")
    assert len(mailbox.messages) == 2
    verifications = list(mailbox.messages)
    assert {m.recipients[0] for m in verifications} == {"kossi@example.org", "ama@example.org"}
    for mail in verifications:
        await confirm_email(worker, mail.text())
    await wait_until(lambda: len(mailbox.messages) >= 4, timeout=30, message="two welcomes")
    # The confirmations queued their welcomes in their own transactions: once none is
    # pending, a second welcome would have been sent too.
    await wait_until(lambda: deliveries_settled(worker), timeout=30, message="deliveries sent")
    assert len(mailbox.messages) == 4

    by_address = {m.recipients[0]: m for m in mailbox.messages[2:]}
    fr_mail, en_mail = by_address["kossi@example.org"], by_address["ama@example.org"]
    assert fr_mail.subject.startswith("Bienvenue")
    assert "Bonjour Kossi Agbeko" in fr_mail.text()
    # Dates through Babel in the person's language (registered on 27 April 2026).
    assert "27 avril 2026" in fr_mail.text()
    assert "27 April 2026" in en_mail.text()
    assert str(french.member_id) in fr_mail.text()
    assert en_mail.subject.startswith("Welcome")
    assert "Hello Ama Agbeko" in en_mail.text()
    assert fr_mail.message_id != en_mail.message_id
    assert await statuses(worker) == ["sent"] * 4

    delivered = await read_topic(
        kafka_bootstrap, topic_prefix + NOTIFICATIONS_DELIVERIES.name, expect=4
    )
    types = sorted(decode(headers_from_kafka(r.headers), r.value).type for r in delivered)
    assert types == ["notifications.delivery.delivered"] * 4


async def test_refused_mail_fails_falls_back_to_the_inbox_and_temporary_refusals_are_retried(
    worker: Notifications, kafka_bootstrap: str, topic_prefix: str, mailbox: Mailbox
) -> None:
    topic = topic_prefix + REGISTRY_MEMBERS.name
    mailbox.rejected.add("gone@example.org")
    # Yawa's address is refused for good: its verification fails, with no fallback (no
    # other channel proves an email address), and nothing else is sent to it.
    await publish(kafka_bootstrap, topic, registered("Yawa", "gone@example.org"))
    await wait_until(lambda: _sorted_statuses(worker, ["failed"]), timeout=30, message="refusal")
    # Once the address was verified (and later refused), a message falls back: without
    # an SMS provider in this worker, to the in-app inbox. (Verified here directly: the
    # link cannot reach a refusing server.)
    async with worker.sessions() as session, session.begin():
        await session.execute(
            update(recipients).values(email_verified_at=func.now(), welcomed_at=None)
        )
        await welcome_if_due(
            session,
            worker.outbox,
            (await session.execute(select(recipients.c.member_id))).scalar_one(),
            available=frozenset({"email", "inbox"}),
        )
    await wait_until(
        lambda: _sorted_statuses(worker, ["failed", "failed", "sent"]),
        timeout=30,
        message="a fallback",
    )
    mailbox.transient_failures = 1
    await publish(kafka_bootstrap, topic, registered("Edem", "edem@example.org"))
    await wait_until(
        lambda: _sorted_statuses(worker, ["failed", "failed", "sent", "sent"]),
        timeout=30,
        message="retried send",
    )
    async with worker.sessions() as session:
        rows = {
            (r.channel, r.address, r.template): r for r in await session.execute(select(deliveries))
        }
    verification = rows[("email", "gone@example.org", "contact_verification_email")]
    assert (verification.status, verification.reason) == ("failed", "verification")
    edem = rows[("email", "edem@example.org", "contact_verification_email")]
    rows = {(c, a): r for (c, a, t), r in rows.items() if t != "contact_verification_email"}
    failed = rows[("email", "gone@example.org")]
    assert failed.status == "failed"
    assert failed.last_error.startswith("550")
    fallback = rows[("inbox", None)]
    assert (fallback.status, fallback.reason, fallback.previous_id) == (
        "sent",
        "fallback",
        failed.id,
    )
    # Edem's verification, retried after the temporary refusal.
    assert edem.attempts == 2
    assert [m.recipients for m in mailbox.messages] == [("edem@example.org",)]
    events = await read_topic(
        kafka_bootstrap, topic_prefix + NOTIFICATIONS_DELIVERIES.name, expect=4
    )
    types = sorted(decode(headers_from_kafka(r.headers), r.value).type for r in events)
    assert types == [
        "notifications.delivery.delivered",
        "notifications.delivery.delivered",
        "notifications.delivery.failed",
        "notifications.delivery.failed",
    ]


async def _sorted_statuses(service: Notifications, expected: list[str]) -> bool:
    return sorted(await statuses(service)) == expected
