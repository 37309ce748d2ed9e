"""``registry.member.identity-verified``: the snapshot updates the contact like any member
event (never dead-lettered), and the person is told, in their language, that an officer
verified their identity. Real worker, PostgreSQL, Kafka and SMTP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
from notifications_testing import (
    confirm_email,
    deliveries_of,
    publish,
    registered,
    wait_members_consumed,
)
from sqlalchemy import select

from diaspora_devstack.mailbox import Mailbox
from diaspora_devstack.testing import wait_until
from diaspora_events.contracts import MemberIdentityVerifiedV1
from diaspora_events.contracts.registry import IdentityVerification, MemberProfile
from diaspora_events.topics import REGISTRY_MEMBERS
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


async def test_the_person_hears_their_identity_was_verified_and_the_snapshot_applies(
    worker: Notifications, kafka_bootstrap: str, topic_prefix: str, mailbox: Mailbox
) -> None:
    topic = topic_prefix + REGISTRY_MEMBERS.name
    person = registered("Elom", "elom.identity@example.org")
    member = person.member_id
    await publish(kafka_bootstrap, topic, person)
    await wait_until(lambda: len(mailbox.messages) >= 1, timeout=30, message="verification")
    await confirm_email(worker, mailbox.messages[0].text())
    await wait_until(lambda: len(mailbox.messages) >= 2, timeout=30, message="welcome")

    verified_at = datetime.now(UTC)
    check = IdentityVerification(
        level="in_person",
        method="document_in_person",
        document_type="passport",
        verified_at=verified_at,
        embassy_id="de-berlin",
        expires_on=date(2031, 4, 26),
    )
    snapshot = MemberProfile(
        given_name="Elom",
        family_name="Agbeko",
        date_of_birth=date(1985, 6, 1),
        email="elom.identity@example.org",
        phone="+4915112345678",
        preferred_language="en",  # changed meanwhile: the message follows the snapshot
        country_of_residence="DE",
        embassy_id="de-berlin",
        identity=check,
    )
    await publish(
        kafka_bootstrap,
        topic,
        MemberIdentityVerifiedV1(
            member_id=member, verified_at=verified_at, level="in_person", profile=snapshot
        ),
    )
    # Committed past the event (handled, not parked), with its effects.
    await wait_members_consumed(worker)
    async with worker.sessions() as session:
        contact = (
            await session.execute(select(recipients).where(recipients.c.member_id == member))
        ).one()
    assert contact.language == "en"
    sent = [
        d for d in await deliveries_of(worker, member) if d.template == "member_identity_verified"
    ]
    assert len(sent) == 1
    assert sent[0].language == "en"
    assert sent[0].category == "account"
    await wait_until(lambda: len(mailbox.messages) >= 3, timeout=30, message="identity email")
    mail = mailbox.messages[2]
    assert mail.subject == "Elom, your identity is verified in the diaspora registry"
    text = mail.text()
    assert "by seeing your identity document at the embassy" in text
    assert "2031" in text
