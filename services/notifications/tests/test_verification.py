"""Email and phone are verified before anything else is sent to them (issue 15).

Real worker, real PostgreSQL, real Kafka, a real SMTP server writing .eml files and
the SMS sink; the person confirms through the service's HTTP API.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from notifications_testing import (
    add_recipient,
    deliveries_of,
    deliveries_settled,
    events_on,
    publish,
    registered,
    wait_members_consumed,
)
from sqlalchemy import select

from diaspora_devstack.mailbox import Mailbox
from diaspora_devstack.sms_sink import SmsSink
from diaspora_devstack.testing import serve_app, wait_until
from diaspora_events.contracts import MemberUpdatedV1
from diaspora_events.contracts.registry import MemberProfile
from diaspora_events.topics import NOTIFICATIONS_CONTACTS, REGISTRY_MEMBERS
from diaspora_identity.testing import LocalIssuer, admin, citizen
from notifications.bootstrap import bootstrap
from notifications.contacts.tables import contact_verifications
from notifications.contacts.verification import RateLimited, secret_hash, send
from notifications.deliveries.dispatch import notify
from notifications.deliveries.sender import SECRET_REMOVED
from notifications.deliveries.tables import deliveries
from notifications.entrypoints.http import build_app
from notifications.entrypoints.worker import run
from notifications.resources import Notifications
from notifications.tables import recipients

pytestmark = pytest.mark.integration

INJECTED = "Ama\r\nReply-To: x@evil.example\r\nX-Probe: 1"
LINK = re.compile(r"confirm\?token=([A-Za-z0-9_\-]+)")


@pytest.fixture
def mail_folder(tmp_path: Path) -> Path:
    return tmp_path / "mail"


@pytest.fixture
def files_mailbox(mail_folder: Path) -> AsyncIterator[Mailbox]:
    with Mailbox(folder=mail_folder) as box:
        yield box


@pytest.fixture
async def sms_sink() -> AsyncIterator[tuple[SmsSink, str]]:
    sink = SmsSink(token="t")
    async with serve_app(sink.asgi_app()) as base_url:
        yield sink, f"{base_url}/messages"


@pytest.fixture
async def service(
    make_settings: Callable[..., Any],
    files_mailbox: Mailbox,
    identity_provider: LocalIssuer,
    sms_sink: tuple[SmsSink, str],
) -> AsyncIterator[Notifications]:
    """Worker and HTTP API on one database; mail in .eml files, SMS in the sink."""
    settings = make_settings(
        smtp_port=files_mailbox.port,
        sms_provider_url=sms_sink[1],
        sms_auth_value="Bearer t",
        oidc_issuer=identity_provider.issuer,
        oidc_audience=identity_provider.audience,
        oidc_jwks_min_refresh_seconds=0,
    )
    notifications = bootstrap(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(run(notifications, stop))
    yield notifications
    stop.set()
    await asyncio.wait_for(task, timeout=30)


@pytest.fixture
async def client(service: Notifications) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serve_app(build_app(service)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):
        yield http


def _raw_mails(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(folder.glob("*.eml"))] if folder.exists() else []


async def _verifications(service: Notifications, member: UUID) -> list[Any]:
    async with service.sessions() as session:
        query = (
            select(contact_verifications)
            .where(contact_verifications.c.member_id == member)
            .order_by(contact_verifications.c.created_at)
        )
        return list((await session.execute(query)).all())


async def test_registration_sends_one_verification_then_the_welcome_after_the_link(
    service: Notifications,
    client: httpx.AsyncClient,
    files_mailbox: Mailbox,
    mail_folder: Path,
    sms_sink: tuple[SmsSink, str],
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    # A name with line breaks, as an event from before the text fields refused them.
    event = registered(INJECTED, "ama@example.org", "fr", phone="+4915112349999")
    # Delivered three times (a relay crash): still one verification per contact.
    await publish(kafka_bootstrap, topic_prefix + REGISTRY_MEMBERS.name, event, times=3)
    await wait_until(lambda: len(files_mailbox.messages) >= 1, timeout=30, message="a mail")
    await wait_until(lambda: len(sms_sink[0].messages) >= 1, timeout=30, message="an SMS")
    # Every copy handled (the group committed the end of the topic) and everything they
    # queued sent: any other message (a welcome, a second verification) is here by now.
    await wait_members_consumed(service)
    await wait_until(lambda: deliveries_settled(service), timeout=30, message="deliveries sent")
    (verification_mail,) = files_mailbox.messages
    assert verification_mail.recipients == ("ama@example.org",)
    assert verification_mail.subject.startswith("Confirmez votre adresse")
    (sms,) = sms_sink[0].messages
    assert sms.to == "+4915112349999"
    code = re.search(r"\b(\d{6})\b", sms.text)
    assert code is not None

    # The bytes the SMTP server received carry no injected header.
    (raw,) = _raw_mails(mail_folder)
    headers = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    assert b"\nReply-To:" not in headers
    assert b"\nX-Probe:" not in headers
    assert verification_mail.message["Reply-To"] is None

    # Only the token's hash is stored; the delivery log no longer holds the link.
    token_match = LINK.search(verification_mail.text())
    assert token_match is not None
    token = token_match.group(1)
    rows = await _verifications(service, event.member_id)
    assert sorted(r.kind for r in rows) == ["email", "phone"]
    email_row = next(r for r in rows if r.kind == "email")
    assert email_row.secret_hash == secret_hash(token)
    assert token not in email_row.secret_hash

    async def secrets_gone() -> bool:
        log = await deliveries_of(service, event.member_id)
        return len(log) == 2 and all(r.body == SECRET_REMOVED for r in log)

    await wait_until(secrets_gone, timeout=10, message="the secrets removed once sent")

    # Confirming the link (no bearer token: the secret is the proof) -> the welcome.
    confirmed = await client.post("/contacts/email/confirm", json={"token": token})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["kind"] == "email"
    await wait_until(lambda: len(files_mailbox.messages) >= 2, timeout=30, message="welcome")
    welcome = files_mailbox.messages[1]
    assert welcome.recipients == ("ama@example.org",)
    assert welcome.subject.startswith("Bienvenue")
    assert "\n" not in welcome.subject
    for raw in _raw_mails(mail_folder):
        headers = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
        assert b"\nReply-To:" not in headers
        assert b"\nX-Probe:" not in headers
    # Single use: the same link again is refused, and nothing more is sent.
    await wait_until(lambda: deliveries_settled(service), timeout=30, message="welcome sent")
    queued = len(await deliveries_of(service, event.member_id))
    again = await client.get("/contacts/email/confirm", params={"token": token})
    assert again.status_code == 404
    assert again.headers["content-type"].startswith("application/problem+json")
    # A confirmation queues its messages in its own transaction, done once answered: a
    # second welcome would be a delivery by now, and sent once none is pending.
    await wait_until(lambda: deliveries_settled(service), timeout=30, message="nothing pending")
    assert len(await deliveries_of(service, event.member_id)) == queued
    assert len(files_mailbox.messages) == 2


async def test_the_sms_code_is_checked_with_limited_attempts(
    service: Notifications,
    client: httpx.AsyncClient,
    identity_provider: LocalIssuer,
    sms_sink: tuple[SmsSink, str],
    files_mailbox: Mailbox,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    event = registered("Kossi", "kossi@example.org", "fr", phone="+4915112341111")
    await publish(kafka_bootstrap, topic_prefix + REGISTRY_MEMBERS.name, event)
    await wait_until(lambda: len(sms_sink[0].messages) >= 1, timeout=30, message="an SMS")
    found = re.search(r"\b(\d{6})\b", sms_sink[0].messages[0].text)
    assert found is not None
    code = found.group(1)
    wrong = "000000" if code != "000000" else "111111"
    me = identity_provider.headers(citizen(member_id=event.member_id))
    other = identity_provider.headers(citizen(member_id=registered("X", "x@example.org").member_id))

    status = (await client.get("/me/contacts", headers=me)).json()
    assert status["phone"] == {"address": "+4915112341111", "verified": False}
    refused = await client.post("/me/contacts/phone/confirm", json={"code": wrong}, headers=me)
    assert refused.status_code == 422
    assert "4 attempt(s) left" in refused.text
    # Someone else's code does not work with another account (there is no such recipient).
    assert (
        await client.post("/me/contacts/phone/confirm", json={"code": code}, headers=other)
    ).status_code == 404
    # Control characters in the code: a 422 problem, never a 500.
    bad = await client.post("/me/contacts/phone/confirm", json={"code": "12\r\n34"}, headers=me)
    assert bad.status_code == 422
    ok = await client.post("/me/contacts/phone/confirm", json={"code": code}, headers=me)
    assert ok.status_code == 200, ok.text
    status = (await client.get("/me/contacts", headers=me)).json()
    assert status["phone"]["verified"] is True
    assert status["email"]["verified"] is False
    # The welcome follows the phone's confirmation, by SMS (email not verified yet).
    await wait_until(lambda: len(sms_sink[0].messages) >= 2, timeout=30, message="welcome SMS")
    assert sms_sink[0].messages[1].text.startswith("Bienvenue Kossi")
    assert len(files_mailbox.messages) == 1  # only the email's verification
    events = await events_on(service, NOTIFICATIONS_CONTACTS, expect=1)
    assert [(t, k, e.kind) for t, k, e in events] == [
        ("notifications.contact.verified", str(event.member_id), "phone")
    ]

    # A re-send of the email's link is possible; the phone is verified already.
    resent = await client.post("/me/contacts/email/resend", headers=me)
    assert resent.status_code == 201
    assert (await client.post("/me/contacts/phone/resend", headers=me)).status_code == 409


async def test_five_wrong_codes_exhaust_the_code(
    service: Notifications,
    client: httpx.AsyncClient,
    identity_provider: LocalIssuer,
    sms_sink: tuple[SmsSink, str],
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    event = registered("Edem", "edem@example.org", "fr", phone="+4915112342222")
    await publish(kafka_bootstrap, topic_prefix + REGISTRY_MEMBERS.name, event)
    await wait_until(lambda: len(sms_sink[0].messages) >= 1, timeout=30, message="an SMS")
    found = re.search(r"\b(\d{6})\b", sms_sink[0].messages[0].text)
    assert found is not None
    code = found.group(1)
    wrong = "000000" if code != "000000" else "111111"
    me = identity_provider.headers(citizen(member_id=event.member_id))
    answers = [
        (await client.post("/me/contacts/phone/confirm", json={"code": wrong}, headers=me))
        for _ in range(5)
    ]
    assert [a.status_code for a in answers] == [422, 422, 422, 422, 409]
    late = await client.post("/me/contacts/phone/confirm", json={"code": code}, headers=me)
    assert late.status_code == 404
    assert (await client.get("/me/contacts", headers=me)).json()["phone"]["verified"] is False


async def test_resends_are_rate_limited_with_retry_after(
    service: Notifications,
    client: httpx.AsyncClient,
    identity_provider: LocalIssuer,
    files_mailbox: Mailbox,
) -> None:
    member = await add_recipient(service, email="yawa@example.org", verified=False)
    me = identity_provider.headers(citizen(member_id=member))
    answers = [await client.post("/me/contacts/email/resend", headers=me) for _ in range(4)]
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    limited = answers[-1]
    assert limited.headers["content-type"].startswith("application/problem+json")
    assert 3000 < int(limited.headers["retry-after"]) <= 3601
    await wait_until(lambda: len(files_mailbox.messages) >= 3, timeout=30, message="3 mails")
    # Staff cannot resend a verification (its secret is gone from the log).
    staff_resend = await client.post(
        f"/deliveries/{answers[0].json()['delivery_id']}/resend",
        headers=identity_provider.headers(admin()),
    )
    assert staff_resend.status_code == 409
    rows = await _verifications(service, member)
    # Each new send supersedes the previous one: only the last link works.
    assert [r.status for r in rows] == ["superseded", "superseded", "pending"]
    tokens = [LINK.search(m.text()) for m in files_mailbox.messages]
    assert all(tokens)
    first = await client.post("/contacts/email/confirm", json={"token": tokens[0].group(1)})  # type: ignore[union-attr]
    assert first.status_code == 404
    last = await client.post("/contacts/email/confirm", json={"token": tokens[2].group(1)})  # type: ignore[union-attr]
    assert last.status_code == 200


async def test_the_member_limit_counts_the_sends_to_every_address(
    service: Notifications,
) -> None:
    member = await add_recipient(service, email="a@example.org", verified=False)
    settings = service.settings.model_copy(update={"verification_sends_per_member_per_hour": 2})

    async def send_to(address: str) -> UUID | None:
        async with service.sessions() as session, session.begin():
            await session.execute(
                recipients.update().where(recipients.c.member_id == member).values(email=address)
            )
            return await send(session, service.outbox, settings, member_id=member, kind="email")

    # One send per address (under its limit of 3): only the member's limit refuses.
    assert await send_to("a@example.org") is not None
    assert await send_to("b@example.org") is not None
    with pytest.raises(RateLimited) as limited:
        await send_to("c@example.org")
    assert 3000 < limited.value.retry_after <= 3601
    assert len(await _verifications(service, member)) == 2


async def test_the_contacts_of_an_account_without_a_recipient_are_a_404_problem(
    client: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    stranger = identity_provider.headers(citizen(member_id=uuid4()))
    for answer in (
        await client.get("/me/contacts", headers=stranger),
        await client.post("/me/contacts/email/resend", headers=stranger),
        await client.post("/me/contacts/phone/resend", headers=stranger),
    ):
        assert answer.status_code == 404, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["title"] == "Recipient not found"


async def test_unverified_contacts_receive_nothing_else_and_a_new_address_is_verified_anew(
    service: Notifications,
    client: httpx.AsyncClient,
    files_mailbox: Mailbox,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    # An unverified email: a message goes to the inbox, never to the address.
    unverified = await add_recipient(service, email="afi@example.org", verified=False)
    async with service.sessions() as session, session.begin():
        await notify(
            session,
            service.outbox,
            member_id=unverified,
            template="member_profile_reminder",
            variables={"member_id": str(unverified), "last_confirmed_at": "2026-01-01"},
            cause_event_id=unverified,
            available=frozenset({"email", "inbox"}),
        )
    (row,) = await deliveries_of(service, unverified)
    assert (row.channel, row.address) == ("inbox", None)

    # A verified person changes their email (registry PATCH -> member.updated): the new
    # address gets its own verification, and a message queued for the old one is dropped.
    member = await add_recipient(service, email="old@example.org", given_name="Kossi", country="DE")
    async with service.sessions() as session, session.begin():
        await session.execute(
            deliveries.insert().values(
                id=UUID(int=1),
                cause_event_id=UUID(int=2),
                recipient_id=member,
                channel="email",
                template="member_profile_reminder",
                category="profile_reminders",
                language="fr",
                address="old@example.org",
                subject="Ancien",
                body="Ancien",
                sms_text="",
                next_attempt_at=datetime(2100, 1, 1, tzinfo=UTC),
            )
        )
    update = MemberUpdatedV1(
        member_id=member,
        changed_fields=["email"],
        profile=MemberProfile(
            given_name="Kossi",
            family_name="Agbeko",
            date_of_birth=date(1985, 6, 1),
            email="new@example.org",
            phone="+4915112343333",
            preferred_language="fr",
            country_of_residence="DE",
            embassy_id="de-berlin",
        ),
        updated_at=datetime.now(UTC),
    )
    await publish(kafka_bootstrap, topic_prefix + REGISTRY_MEMBERS.name, update)
    await wait_until(lambda: len(files_mailbox.messages) >= 1, timeout=30, message="a mail")
    (mail,) = files_mailbox.messages
    assert mail.recipients == ("new@example.org",)
    assert mail.subject.startswith("Confirmez")
    async with service.sessions() as session:
        person = (
            await session.execute(select(recipients).where(recipients.c.member_id == member))
        ).one()
        assert (person.email, person.email_verified_at) == ("new@example.org", None)
    async with service.sessions() as session, session.begin():
        await session.execute(
            deliveries.update()
            .where(deliveries.c.id == UUID(int=1))
            .values(next_attempt_at=datetime.now(UTC))
        )

    async def old_cancelled() -> bool:
        rows = {r.id: r for r in await deliveries_of(service, member)}
        return rows[UUID(int=1)].status == "cancelled"

    await wait_until(old_cancelled, timeout=30, message="the old address's message dropped")
    assert [m.recipients for m in files_mailbox.messages] == [("new@example.org",)]
