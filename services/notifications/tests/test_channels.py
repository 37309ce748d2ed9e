"""SMS fallback, provider retries, quiet hours, opt-out and erasure against the real
database, broker, SMTP server and the local SMS provider server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from notifications_testing import add_recipient, deliveries_of, publish, registered
from sqlalchemy import func, text, update
from uuid_utils.compat import uuid7

from diaspora_devstack.mailbox import Mailbox
from diaspora_devstack.sms_sink import SmsSink
from diaspora_devstack.testing import serve_app, wait_until
from diaspora_events.contracts import MemberErasedV1
from diaspora_events.topics import REGISTRY_MEMBERS
from notifications.bootstrap import bootstrap
from notifications.contacts.verification import welcome_if_due
from notifications.deliveries.dispatch import notify
from notifications.deliveries.sms import HttpSmsProvider, TransientFailure
from notifications.deliveries.smtp import EmailSender, EmailTransport
from notifications.entrypoints.worker import run
from notifications.resources import Notifications
from notifications.tables import recipients

pytestmark = pytest.mark.integration


@pytest.fixture
async def sms_sink() -> AsyncIterator[tuple[SmsSink, str]]:
    sink = SmsSink(token="test-token")
    async with serve_app(sink.asgi_app()) as base_url:
        yield sink, f"{base_url}/messages"


async def _settled(service: Notifications, count: int) -> bool:
    rows = await deliveries_of(service)
    return len(rows) == count and all(r.status != "pending" for r in rows)


async def verify_and_welcome(service: Notifications, *members: UUID) -> None:
    """Mark the members' contacts verified and queue their welcome (what confirming
    does), for tests of what happens to messages after verification."""
    async with service.sessions() as session, session.begin():
        for member in members:
            await session.execute(
                update(recipients)
                .where(recipients.c.member_id == member)
                .values(email_verified_at=func.now(), phone_verified_at=func.now())
            )
            await welcome_if_due(
                session, service.outbox, member, available=service.settings.available_channels
            )


@contextlib.asynccontextmanager
async def running_worker(service: Notifications, **kwargs: Any) -> AsyncIterator[Notifications]:
    stop = asyncio.Event()
    task = asyncio.create_task(run(service, stop, **kwargs))
    try:
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def test_email_refused_for_good_falls_back_to_sms_and_sms_4xx_to_the_inbox(
    make_settings: Callable[..., Any],
    sms_sink: tuple[SmsSink, str],
    mailbox: Mailbox,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    sink, url = sms_sink
    service = bootstrap(make_settings(sms_provider_url=url, sms_auth_value="Bearer test-token"))
    mailbox.rejected.update({"gone@example.org", "gone2@example.org"})
    yawa = registered("Yawa", "gone@example.org", "fr", phone="+4915112340001")
    edem = registered("Edem", "gone2@example.org", "en", phone="+4915112340002")
    async with running_worker(service):
        await publish(kafka_bootstrap, topic_prefix + REGISTRY_MEMBERS.name, yawa, edem)
        # Each registration first verifies the email and the phone; the refused emails'
        # verifications fail (no fallback: no other channel proves an address). Treat
        # both contacts as verified then, and queue the welcome: it falls back.
        await wait_until(lambda: _settled(service, 4), timeout=30, message="verifications")
        before, requests_before = len(sink.messages), sink.requests
        sink.refused.add("+4915112340002")
        sink.fail_next(2, 503)  # the first SMS is retried by the adapter, then accepted
        await verify_and_welcome(service, yawa.member_id, edem.member_id)
        await wait_until(lambda: _settled(service, 9), timeout=30, message="fallbacks")
    rows = {
        (r.recipient_id, r.channel): r
        for r in await deliveries_of(service)
        if r.template == "member_welcome"
    }
    # Yawa: email refused (550) -> SMS accepted after two 503s.
    assert rows[(yawa.member_id, "email")].status == "failed"
    sms = rows[(yawa.member_id, "sms")]
    assert (sms.status, sms.reason, sms.previous_id) == (
        "sent",
        "fallback",
        rows[(yawa.member_id, "email")].id,
    )
    (message,) = sink.messages[before:]
    assert message.to == "+4915112340001"
    assert message.text.startswith("Bienvenue Yawa")
    assert message.authorization == "Bearer test-token"
    assert message.reference == str(sms.id)
    # Edem: email refused -> SMS refused (400, not retried) -> inbox.
    assert rows[(edem.member_id, "sms")].status == "failed"
    assert rows[(edem.member_id, "sms")].attempts == 1
    assert rows[(edem.member_id, "inbox")].status == "sent"
    # 2 x 503 + accepted + one refusal: no retry of the 400
    assert sink.requests - requests_before == 4
    await service.close()


async def test_provider_adapter_retries_5xx_and_timeouts_and_gives_up_as_transient(
    sms_sink: tuple[SmsSink, str],
) -> None:
    sink, url = sms_sink
    provider = HttpSmsProvider(
        url=url,
        auth_value="Bearer test-token",
        tries=3,
        first_backoff=0.01,
        payload_template='{"to": $to, "text": $text, "reference": $reference, "sender": "TOGO"}',
    )
    sink.fail_next(3, 502)
    with pytest.raises(TransientFailure):
        await provider.send(to="+22890000000", text="x", reference="r1")
    assert sink.requests == 3
    assert await provider.send(to="+22890000000", text='é "quoted"', reference="r2")
    assert sink.messages[0].text == 'é "quoted"'
    await provider.close()
    # A provider that does not answer in time: retried, then transient.
    slow = HttpSmsProvider(url=url, timeout=0.2, tries=2, first_backoff=0.01)
    sink.delay_next(2, 1.0)
    before = sink.requests
    with pytest.raises(TransientFailure):
        await slow.send(to="+22890000000", text="x", reference="r3")
    assert sink.requests - before == 2
    await slow.close()


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_quiet_hours_hold_email_until_they_end_but_not_safety_alerts(
    notifications: Notifications, mailbox: Mailbox
) -> None:
    zone = ZoneInfo("America/Toronto")
    real_now = datetime.now(UTC)
    local = real_now.astimezone(zone)
    # Quiet from an hour ago to two hours from now, in the person's zone (from CA).
    start = (local - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (local + timedelta(hours=2)).time().replace(second=0, microsecond=0)
    member = await add_recipient(
        notifications,
        email="kafui@example.ca",
        country="CA",
        prefs={"quiet_start": start, "quiet_end": end},
    )
    for template, variables in (
        ("migration_awareness", {"hotline": "+228 1"}),
        ("safety_alert", {"message": "Tempête", "embassy_phone": "+1 613"}),
    ):
        async with notifications.sessions() as session, session.begin():
            await notify(
                session,
                notifications.outbox,
                member_id=member,
                template=template,
                variables=variables,
                cause_event_id=uuid7(),
                available=frozenset({"email", "inbox"}),
            )
    clock = FakeClock(real_now + timedelta(seconds=1))
    sender = EmailSender(
        settings=notifications.settings,
        sessions=notifications.sessions,
        outbox=notifications.outbox,
        work_available=asyncio.Event(),
        clock=clock,
    )
    transport = EmailTransport(notifications.settings)
    while await sender.send_one(transport):
        pass
    # The safety alert went out; the awareness message waits for the end of quiet hours.
    assert [m.subject for m in mailbox.messages] == ["Alerte de sécurité"]
    held = next(r for r in await deliveries_of(notifications, member) if r.status == "pending")
    expected_end = datetime.combine(
        local.date() + timedelta(days=1 if end < time(local.hour, local.minute) else 0),
        end,
        tzinfo=zone,
    )
    assert held.next_attempt_at == expected_end
    clock.now = expected_end - timedelta(minutes=1)
    assert not await sender.send_one(transport)  # not due yet: nothing sent
    clock.now = expected_end + timedelta(seconds=1)
    assert await sender.send_one(transport)
    await transport.close()
    assert [m.subject for m in mailbox.messages][1].startswith("Migration irrégulière")
    assert {r.status for r in await deliveries_of(notifications, member)} == {"sent"}


async def test_opt_out_cancels_queued_messages_and_skips_new_ones(
    notifications: Notifications, mailbox: Mailbox
) -> None:
    member = await add_recipient(notifications, email="opt@example.fr", prefs={})
    async with notifications.sessions() as session, session.begin():
        await notify(
            session,
            notifications.outbox,
            member_id=member,
            template="migration_awareness",
            variables={"hotline": "+228 1"},
            cause_event_id=uuid7(),
            available=frozenset({"email", "inbox"}),
        )
        # The person opts out before it is sent...
        await session.execute(
            text("UPDATE preferences SET opted_out = '{awareness}' WHERE member_id = :m"),
            {"m": member},
        )
        # ...and a later one is not even queued.
        skipped = await notify(
            session,
            notifications.outbox,
            member_id=member,
            template="migration_awareness",
            variables={"hotline": "+228 1"},
            cause_event_id=uuid7(),
            available=frozenset({"email", "inbox"}),
        )
    assert skipped is None
    sender = EmailSender(
        settings=notifications.settings,
        sessions=notifications.sessions,
        outbox=notifications.outbox,
        work_available=asyncio.Event(),
    )
    transport = EmailTransport(notifications.settings)
    while await sender.send_one(transport):
        pass
    await transport.close()
    assert mailbox.messages == []
    (row,) = await deliveries_of(notifications, member)
    assert (row.status, row.last_error) == ("cancelled", "opted out")


async def test_erasure_leaves_no_name_email_or_phone_in_any_text_column(
    make_settings: Callable[..., Any],
    sms_sink: tuple[SmsSink, str],
    mailbox: Mailbox,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    _sink, url = sms_sink
    service = bootstrap(make_settings(sms_provider_url=url, sms_auth_value="Bearer test-token"))
    mailbox.rejected.add("zoe.erased@example.org")  # email fails -> SMS -> deliveries with errors
    person = registered("Zoéfiaka", "zoe.erased@example.org", phone="+4915199990000")
    person = person.model_copy(update={"family_name": "Tchalla-Erasable"})
    keeper = registered("Kept", "kept@example.org", phone="+4915199990001")
    topic = topic_prefix + REGISTRY_MEMBERS.name
    async with running_worker(service):
        await publish(kafka_bootstrap, topic, person, keeper)

        async def sent() -> bool:
            rows = await deliveries_of(service)
            # Each of the two people's verifications (more may follow: email and SMS). Not
            # any two sent rows: the keeper's email and SMS could be both, before the
            # person's registration is applied (the member topic's partitions are
            # consumed concurrently).
            sent_to = {r.recipient_id for r in rows if r.status == "sent"}
            return {person.member_id, keeper.member_id} <= sent_to

        await wait_until(sent, timeout=30, message="deliveries")
        async with service.sessions() as session, session.begin():
            await session.execute(
                text(
                    "INSERT INTO preferences (member_id, channels, opted_out) "
                    "VALUES (:m, '{email,inbox}', '{awareness}')"
                ),
                {"m": person.member_id},
            )
            await notify(
                session,
                service.outbox,
                member_id=person.member_id,
                template="safety_alert",
                variables={"message": "Message for Zoéfiaka", "embassy_phone": "+49"},
                cause_event_id=uuid7(),
                available=frozenset({"inbox"}),
            )
        erased = MemberErasedV1(member_id=person.member_id, erased_at=datetime.now(UTC))
        await publish(kafka_bootstrap, topic, erased)

        async def gone() -> bool:
            async with service.sessions() as session:
                return (
                    await session.execute(
                        text("SELECT count(*) FROM recipients WHERE member_id = :m"),
                        {"m": person.member_id},
                    )
                ).scalar_one() == 0

        await wait_until(gone, timeout=30, message="erasure")
    needles = [person.given_name, person.family_name, person.email, person.phone, "Zoéfiaka"]
    async with service.sessions() as session:
        columns = (
            await session.execute(
                text(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND data_type IN "
                    "('text', 'character varying', 'character', 'jsonb', 'json', 'ARRAY')"
                )
            )
        ).all()
        assert len(columns) > 20
        found = []
        for table, column in columns:
            for needle in needles:
                hits = (
                    await session.execute(
                        # Names from information_schema, not input.
                        text(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE :n'),  # noqa: S608
                        {"n": f"%{needle}%"},
                    )
                ).scalar_one()
                if hits:
                    found.append((table, column, needle))
        assert found == []
        # The keeper's data is intact, and the anonymised rows still count.
        kept = (
            await session.execute(
                text("SELECT count(*) FROM recipients WHERE email = 'kept@example.org'")
            )
        ).scalar_one()
        stats = (
            await session.execute(
                text(
                    "SELECT channel, status FROM deliveries WHERE anonymised_at IS NOT NULL "
                    "ORDER BY channel"
                )
            )
        ).all()
        inbox_left = (
            await session.execute(text("SELECT count(*) FROM inbox_messages"))
        ).scalar_one()
    assert kept == 1
    assert [tuple(r) for r in stats] == [("email", "failed"), ("inbox", "sent"), ("sms", "sent")]
    assert inbox_left == 0
    await service.close()
