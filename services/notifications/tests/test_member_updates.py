"""Recipients follow the registry's member snapshots (updated, confirmed, marked-stale),
merges and erasures: real worker, real PostgreSQL, real Kafka and an SMTP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from notifications_testing import confirm_email, deliveries_of, publish, registered
from sqlalchemy import insert, select
from uuid_utils.compat import uuid7

from diaspora_devstack.mailbox import Mailbox
from diaspora_devstack.testing import wait_until
from diaspora_events.contracts import (
    MemberConfirmedV1,
    MemberErasedV1,
    MemberMergedV1,
    MemberUpdatedV1,
)
from diaspora_events.contracts.registry import Consent, MemberProfile, Occupation
from diaspora_events.topics import REGISTRY_MEMBERS
from notifications.campaigns.schemas import Segment
from notifications.campaigns.service import audience_size
from notifications.contacts.tables import removed_members
from notifications.deliveries.dispatch import notify
from notifications.entrypoints.worker import run
from notifications.preferences.tables import inbox_messages, preferences
from notifications.resources import Notifications
from notifications.tables import recipients

pytestmark = pytest.mark.integration

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def worker(notifications: Notifications) -> AsyncIterator[Notifications]:
    stop = asyncio.Event()
    task = asyncio.create_task(run(notifications, stop))
    yield notifications
    stop.set()
    await asyncio.wait_for(task, timeout=30)


def profile(email: str, **changes: Any) -> MemberProfile:
    values: dict[str, Any] = {
        "given_name": "Kossi",
        "family_name": "Agbeko",
        "date_of_birth": date(1985, 6, 1),
        "email": email,
        "phone": "+4915112345678",
        "preferred_language": "fr",
        "country_of_residence": "DE",
        "embassy_id": "emb-berlin",
        **changes,
    }
    return MemberProfile(**values)


def newsletters(granted: bool, at: datetime) -> list[Consent]:
    return [Consent(purpose="newsletters", granted=granted, at=at)]


def updated(member_id: UUID, at: datetime, snapshot: MemberProfile) -> MemberUpdatedV1:
    return MemberUpdatedV1(
        member_id=member_id, updated_at=at, changed_fields=["email"], profile=snapshot
    )


async def recipient(service: Notifications, member_id: UUID) -> Any:
    async with service.sessions() as session:
        return (
            await session.execute(select(recipients).where(recipients.c.member_id == member_id))
        ).first()


async def newsletter_audience(service: Notifications) -> int:
    async with service.sessions() as session:
        return await audience_size(session, Segment(), "newsletter")


async def tell(service: Notifications, member_id: UUID) -> None:
    """A later message to the person (an awareness campaign's kind)."""
    async with service.sessions() as session, session.begin():
        await notify(
            session,
            service.outbox,
            member_id=member_id,
            template="safety_alert",
            variables={"message": "Restez prudents", "embassy_phone": "+49 30 1234"},
            cause_event_id=uuid7(),
            available=frozenset({"email", "inbox"}),
        )


async def test_updates_replace_the_contact_older_snapshots_are_ignored_and_consent_follows(
    worker: Notifications, kafka_bootstrap: str, topic_prefix: str, mailbox: Mailbox
) -> None:
    topic = topic_prefix + REGISTRY_MEMBERS.name
    person = registered("Kossi", "kossi.old@example.org")
    member = person.member_id
    await publish(kafka_bootstrap, topic, person)
    # The first email verifies the address; the welcome follows its confirmation.
    await wait_until(lambda: len(mailbox.messages) >= 1, timeout=30, message="verification")
    await confirm_email(worker, mailbox.messages[0].text())
    await wait_until(lambda: len(mailbox.messages) >= 2, timeout=30, message="welcome")

    moved = profile(
        "kossi.new@example.org",
        preferred_language="en",
        country_of_residence="ca",
        phone="+15145550100",
        occupations=[Occupation(isco_code="2211")],
        consents=newsletters(True, T0),
    )
    # The newer update, then an older one (redelivered late): the newer one stands.
    stale = profile("kossi.stale@example.org", consents=newsletters(False, T0 - timedelta(1)))
    await publish(
        kafka_bootstrap,
        topic,
        updated(member, T0 + timedelta(hours=2), moved),
        updated(member, T0 + timedelta(hours=1), stale),
    )

    async def contact_is_new() -> bool:
        row = await recipient(worker, member)
        return row is not None and row.email == "kossi.new@example.org"

    await wait_until(contact_is_new, timeout=30, message="updated contact")
    # Both events handled (the older one ignored, not merely not yet seen).
    await wait_until(
        lambda: _handled(worker, 3), timeout=30, message="the three member events handled"
    )
    row = await recipient(worker, member)
    assert (row.email, row.phone, row.language, row.country_of_residence) == (
        "kossi.new@example.org",
        "+15145550100",
        "en",
        "CA",
    )
    assert row.occupations == ["2211"]
    assert row.attributes == {"embassy_id": "emb-berlin"}
    assert row.source_time == T0 + timedelta(hours=2)
    assert await newsletter_audience(worker) == 1

    # The new address gets its own verification; once confirmed, a later message goes
    # to it, in the new language, in Canada's zone.
    await wait_until(lambda: len(mailbox.messages) >= 3, timeout=30, message="verification")
    await confirm_email(worker, mailbox.messages[2].text())
    await tell(worker, member)
    await wait_until(lambda: len(mailbox.messages) >= 4, timeout=30, message="later email")
    assert [m.recipients for m in mailbox.messages] == [
        ("kossi.old@example.org",),
        ("kossi.old@example.org",),
        ("kossi.new@example.org",),
        ("kossi.new@example.org",),
    ]
    assert mailbox.messages[1].subject.startswith("Bienvenue")
    later = [d for d in await deliveries_of(worker, member) if d.template == "safety_alert"]
    assert [(d.address, d.language) for d in later] == [("kossi.new@example.org", "en")]

    # Confirmed with the newsletters consent withdrawn: out of every newsletter audience.
    withdrawn = moved.model_copy(update={"consents": newsletters(False, T0 + timedelta(hours=3))})
    await publish(
        kafka_bootstrap,
        topic,
        MemberConfirmedV1(
            member_id=member, confirmed_at=T0 + timedelta(hours=3), profile=withdrawn
        ),
        # A later snapshot still carrying the old grant brings nothing back.
        updated(member, T0 + timedelta(hours=4), moved),
    )
    await wait_until(lambda: _handled(worker, 5), timeout=30, message="two more events")
    assert await newsletter_audience(worker) == 0
    async with worker.sessions() as session:
        consents = (
            await session.execute(
                select(preferences.c.consents).where(preferences.c.member_id == member)
            )
        ).scalar_one()
    assert consents == []
    assert (await recipient(worker, member)).source_time == T0 + timedelta(hours=4)


async def test_no_snapshot_brings_back_an_erased_or_merged_member_and_merge_moves_the_inbox(
    worker: Notifications, kafka_bootstrap: str, topic_prefix: str, mailbox: Mailbox
) -> None:
    topic = topic_prefix + REGISTRY_MEMBERS.name
    erased_person = registered("Zoé", "zoe@example.org")
    absorbed = registered("Ama", "ama.dup@example.org")
    survivor = registered("Ama", "ama@example.org")
    await publish(kafka_bootstrap, topic, erased_person, absorbed, survivor)
    await wait_until(lambda: len(mailbox.messages) >= 3, timeout=30, message="verifications")
    async with worker.sessions() as session, session.begin():
        # The absorbed record's own choices, more recent than the survivor's (none).
        await session.execute(
            insert(preferences).values(
                member_id=absorbed.member_id,
                channels=["inbox", "email"],
                opted_out=["awareness"],
            )
        )
    await tell(worker, absorbed.member_id)  # lands in the absorbed record's inbox

    await publish(
        kafka_bootstrap,
        topic,
        MemberErasedV1(member_id=erased_person.member_id, erased_at=T0),
        MemberMergedV1(
            member_id=absorbed.member_id,
            survivor_id=survivor.member_id,
            merged_at=T0,
            case_id=uuid7(),
        ),
        updated(survivor.member_id, T0, profile("ama@example.org", given_name="Ama")),
        # Late snapshots of the erased and of the absorbed member, newer than anything.
        updated(erased_person.member_id, T0 + timedelta(days=1), profile("zoe@example.org")),
        MemberConfirmedV1(
            member_id=absorbed.member_id,
            confirmed_at=T0 + timedelta(days=1),
            profile=profile("ama.dup@example.org"),
        ),
    )
    await wait_until(lambda: _handled(worker, 8), timeout=30, message="all member events")
    assert await recipient(worker, erased_person.member_id) is None
    assert await recipient(worker, absorbed.member_id) is None
    async with worker.sessions() as session:
        removed = {
            r.member_id: (r.reason, r.survivor_id)
            for r in await session.execute(select(removed_members))
        }
        inbox = (
            await session.execute(
                select(inbox_messages.c.member_id, inbox_messages.c.title).order_by(
                    inbox_messages.c.created_at
                )
            )
        ).all()
        prefs = (
            await session.execute(
                select(preferences).where(preferences.c.member_id == survivor.member_id)
            )
        ).one()
    assert removed == {
        erased_person.member_id: ("erased", None),
        absorbed.member_id: ("merged", survivor.member_id),
    }
    # The inbox message and the preferences are now the survivor's.
    assert [r.member_id for r in inbox] == [survivor.member_id]
    assert (prefs.channels, prefs.opted_out) == (["inbox", "email"], ["awareness"])
    # The absorbed record's delivery log moved too; nothing is left under its id.
    assert await deliveries_of(worker, absorbed.member_id) == []
    templates = sorted(d.template for d in await deliveries_of(worker, survivor.member_id))
    # (Each registration's first message is its email's verification; none confirmed.)
    assert templates == ["contact_verification_email", "contact_verification_email", "safety_alert"]
    assert (await recipient(worker, survivor.member_id)).email == "ama@example.org"


async def _handled(service: Notifications, count: int) -> bool:
    from notifications.tables import inbox

    async with service.sessions() as session:
        rows = (
            await session.execute(
                select(inbox.c.event_type).where(inbox.c.event_type.like("registry.member.%"))
            )
        ).all()
    return len(rows) >= count
