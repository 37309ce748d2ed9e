"""Advisories of the returnees' watchlist reach the members living in the country and
the country's confirmed awareness subscribers, once each, in their language; an
unconfirmed subscriber gets only the confirmation link; one who left gets nothing more
(real database, broker and SMTP server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
import pytest
from notifications_testing import (
    add_recipient,
    deliveries_of,
    deliveries_settled,
    publish,
    wait_worker_consumed,
)
from sqlalchemy import select
from uuid_utils.compat import uuid7

from diaspora_devstack.mailbox import Mailbox
from diaspora_devstack.testing import wait_until
from diaspora_events.contracts import (
    AdvisoryPublishedV1,
    SubscriberConfirmedV1,
    SubscriberRequestedV1,
    SubscriberUnsubscribedV1,
)
from diaspora_events.topics import RETURNEES_ADVISORIES, RETURNEES_SUBSCRIBERS
from diaspora_identity.testing import LocalIssuer, Persona
from notifications.advisories.tables import subscribers
from notifications.entrypoints.worker import run
from notifications.resources import Notifications

pytestmark = pytest.mark.integration

AT = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
LINK = "https://diaspora.gouv.tg/api/returnees/subscriptions/unsubscribe?token=signed-"


@pytest.fixture
async def worker(notifications: Notifications) -> AsyncIterator[Notifications]:
    stop = asyncio.Event()
    task = asyncio.create_task(run(notifications, stop))
    yield notifications
    stop.set()
    await asyncio.wait_for(task, timeout=30)


def advisory(country: str, title_fr: str, title_en: str) -> AdvisoryPublishedV1:
    return AdvisoryPublishedV1(
        entry_id=uuid7(),
        country=country,
        level="avoid",
        title_fr=title_fr,
        title_en=title_en,
        text_fr="Passeports confisqués et salaires impayés signalés.",
        text_en="Confiscated passports and unpaid wages are reported.",
        published_at=AT,
    )


def requested(subscriber_id: UUID, address: str, language: str) -> SubscriberRequestedV1:
    return SubscriberRequestedV1(
        subscriber_id=subscriber_id,
        channel="email",
        language=language,  # type: ignore[arg-type]
        requested_at=AT,
        expires_at=AT + timedelta(hours=24),
        address=address,
        confirm_link=f"https://diaspora.gouv.tg/api/returnees/subscriptions/confirm?token=c-{subscriber_id}",
    )


def confirmed(
    subscriber_id: UUID, address: str, language: str, countries: list[str]
) -> SubscriberConfirmedV1:
    return SubscriberConfirmedV1(
        subscriber_id=subscriber_id,
        channel="email",
        language=language,  # type: ignore[arg-type]
        awareness=True,
        countries=countries,
        consent_text_version="2026-12-v1",
        consented_at=AT,
        confirmed_at=AT,
        address=address,
        unsubscribe_link=f"{LINK}{subscriber_id}",
    )


async def subscriber_known(service: Notifications, subscriber_id: UUID) -> bool:
    async with service.sessions() as session:
        row = (
            await session.execute(
                select(subscribers.c.confirmed_at).where(
                    subscribers.c.subscriber_id == subscriber_id
                )
            )
        ).first()
    return row is not None and row.confirmed_at is not None


async def test_an_advisory_reaches_members_in_the_country_and_its_subscribers_once_each(
    worker: Notifications, kafka_bootstrap: str, topic_prefix: str, mailbox: Mailbox
) -> None:
    kossi = await add_recipient(worker, given_name="Kossi", email="kossi@example.org", country="LY")
    ama = await add_recipient(
        worker, given_name="Ama", email="ama@example.org", country="LY", language="en"
    )
    # Lives elsewhere; opted out of awareness; address not verified: none is told.
    await add_recipient(worker, given_name="Yao", email="yao@example.org", country="FR")
    await add_recipient(
        worker,
        given_name="Afi",
        email="afi@example.org",
        country="LY",
        prefs={"opted_out": ["awareness"]},
    )
    await add_recipient(
        worker, given_name="Edem", email="edem@example.org", country="LY", verified=False
    )
    kafui, sena, dodzi, twice = uuid7(), uuid7(), uuid7(), uuid7()
    subscriptions = RETURNEES_SUBSCRIBERS.name
    await publish(
        kafka_bootstrap,
        topic_prefix + subscriptions,
        requested(kafui, "kafui@example.tg", "en"),
        requested(sena, "sena@example.tg", "fr"),  # never confirms
        requested(dodzi, "dodzi@example.tg", "fr"),
        requested(twice, "kossi@example.org", "fr"),  # a member's address too
        times=2,
    )
    await wait_until(lambda: len(mailbox.messages) >= 4, timeout=30, message="confirmations")
    await wait_worker_consumed(worker, RETURNEES_SUBSCRIBERS)
    confirmations = sorted((m.recipients[0], m.subject) for m in mailbox.messages)
    assert confirmations == [
        ("dodzi@example.tg", "Confirmez votre inscription aux messages sur la migration"),
        ("kafui@example.tg", "Confirm your subscription to migration messages"),
        ("kossi@example.org", "Confirmez votre inscription aux messages sur la migration"),
        ("sena@example.tg", "Confirmez votre inscription aux messages sur la migration"),
    ]
    # The link is in the mail, and no longer in the delivery log once sent.
    await wait_until(lambda: deliveries_settled(worker), timeout=30, message="sent")
    assert f"confirm?token=c-{kafui}" in next(
        m.text() for m in mailbox.messages if m.recipients == ("kafui@example.tg",)
    )
    assert all(str(kafui) not in (d.body or "") for d in await deliveries_of(worker, kafui))

    await publish(
        kafka_bootstrap,
        topic_prefix + subscriptions,
        confirmed(kafui, "kafui@example.tg", "en", ["LY", "SA"]),
        confirmed(dodzi, "dodzi@example.tg", "fr", ["FR"]),
        confirmed(twice, "kossi@example.org", "fr", ["LY"]),
    )
    for each in (kafui, dodzi, twice):
        await wait_until(lambda each=each: subscriber_known(worker, each), timeout=30)
    before = len(mailbox.messages)

    libya = advisory("LY", "Risques graves pour les travailleurs", "Serious risks for workers")
    # Delivered twice, as after a relay crash: one message each.
    await publish(kafka_bootstrap, topic_prefix + RETURNEES_ADVISORIES.name, libya, times=2)
    await wait_until(lambda: len(mailbox.messages) >= before + 3, timeout=30, message="advisory")
    await wait_worker_consumed(worker, RETURNEES_ADVISORIES)
    await wait_until(lambda: deliveries_settled(worker), timeout=30, message="sent")
    mails = {m.recipients[0]: m for m in mailbox.messages[before:]}
    assert sorted(mails) == ["ama@example.org", "kafui@example.tg", "kossi@example.org"]
    assert len(mailbox.messages) == before + 3
    assert mails["kossi@example.org"].subject == (
        "Avis aux travailleurs migrants : Libye - Risques graves pour les travailleurs"
    )
    assert mails["ama@example.org"].subject == (
        "Advisory for migrant workers: Libya - Serious risks for workers"
    )
    to_kafui = " ".join(mails["kafui@example.tg"].text().split())
    assert "Confiscated passports and unpaid wages are reported." in to_kafui
    assert f"To stop receiving these messages: {LINK}{kafui}" in to_kafui
    assert "unsubscribe" not in mails["kossi@example.org"].text()
    # Members also find it in their in-app inbox; one email each.
    kossi_channels = sorted(d.channel for d in await deliveries_of(worker, kossi))
    assert kossi_channels == ["email", "inbox"]
    assert [d.channel for d in await deliveries_of(worker, ama) if d.channel == "email"] == [
        "email"
    ]

    # Kafui leaves: the next advisory of Libya reaches the members only.
    await publish(
        kafka_bootstrap,
        topic_prefix + subscriptions,
        SubscriberUnsubscribedV1(subscriber_id=kafui, unsubscribed_at=AT),
    )
    await wait_worker_consumed(worker, RETURNEES_SUBSCRIBERS)
    before = len(mailbox.messages)
    again = advisory("LY", "Mise à jour", "Update")
    await publish(kafka_bootstrap, topic_prefix + RETURNEES_ADVISORIES.name, again)
    await wait_until(lambda: len(mailbox.messages) >= before + 2, timeout=30, message="again")
    await wait_worker_consumed(worker, RETURNEES_ADVISORIES)
    await wait_until(lambda: deliveries_settled(worker), timeout=30, message="sent")
    assert sorted(m.recipients[0] for m in mailbox.messages[before:]) == [
        "ama@example.org",
        "kossi@example.org",
    ]
    # Nothing of Kafui's address is kept.
    assert all(d.address is None for d in await deliveries_of(worker, kafui))
    async with worker.sessions() as session:
        left = (
            await session.execute(select(subscribers).where(subscribers.c.subscriber_id == kafui))
        ).one()
    assert left.address is None
    assert left.unsubscribe_link is None
    assert left.unsubscribed_at is not None

    # A late or replayed confirmation does not bring Kafui back.
    await publish(
        kafka_bootstrap,
        topic_prefix + subscriptions,
        confirmed(kafui, "kafui@example.tg", "en", ["LY"]),
    )
    await wait_worker_consumed(worker, RETURNEES_SUBSCRIBERS)
    async with worker.sessions() as session:
        address = await session.scalar(
            select(subscribers.c.address).where(subscribers.c.subscriber_id == kafui)
        )
    assert address is None


async def add_subscriber(
    service: Notifications,
    address: str,
    *,
    awareness: bool = True,
    confirmed_at: datetime | None = AT,
    language: str = "fr",
) -> UUID:
    subscriber_id = uuid7()
    async with service.sessions() as session, session.begin():
        await session.execute(
            subscribers.insert().values(
                subscriber_id=subscriber_id,
                channel="email",
                address=address,
                language=language,
                awareness=awareness,
                countries=["LY"],
                unsubscribe_link=f"{LINK}{subscriber_id}",
                consent_text_version="2026-12",
                consented_at=AT,
                requested_at=AT,
                confirmed_at=confirmed_at,
            )
        )
    return subscriber_id


async def test_an_awareness_campaign_can_reach_the_subscribers_who_asked_for_it(
    client: httpx.AsyncClient,
    identity_provider: LocalIssuer,
    api_service: Notifications,
    mailbox: Mailbox,
) -> None:
    await add_recipient(api_service, given_name="Kossi", email="kossi@example.fr", country="FR")
    awake = await add_subscriber(api_service, "afi@example.tg")
    await add_subscriber(api_service, "yao@example.tg", awareness=False)  # advisories only
    await add_subscriber(api_service, "sena@example.tg", confirmed_at=None)  # not confirmed
    boss = identity_provider.headers(Persona(subject="coord", roles=("ministry_coordinator",)))
    segment = {"countries": ["FR"], "subscribers": True}
    size = await client.post(
        "/campaigns/audience",
        json={"template": "migration_awareness", "segment": segment},
        headers=boss,
    )
    assert size.json() == {"audience": 2, "category": "awareness"}
    # Subscribers consented to awareness messages only: never a newsletter.
    newsletter = await client.post(
        "/campaigns/audience",
        json={"template": "guide_diaspora", "segment": {**segment, "members": False}},
        headers=boss,
    )
    assert newsletter.json()["audience"] == 0

    created = await client.post(
        "/campaigns",
        json={
            "name": "Sensibilisation décembre",
            "template": "migration_awareness",
            "segment": segment,
            "variables": {"hotline": "+228 22 00 00 00"},
            "send_at": datetime.now(UTC).isoformat(),
        },
        headers=boss,
    )
    assert created.status_code == 201, created.text
    stop = asyncio.Event()
    task = asyncio.create_task(run(api_service, stop))
    try:
        await wait_until(lambda: len(mailbox.messages) >= 2, timeout=30, message="campaign")
        await wait_until(lambda: deliveries_settled(api_service), timeout=30, message="sent")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
    mails = {m.recipients[0]: " ".join(m.text().split()) for m in mailbox.messages}
    assert sorted(mails) == ["afi@example.tg", "kossi@example.fr"]
    assert f"Pour ne plus recevoir ces messages : {LINK}{awake}" in mails["afi@example.tg"]
    assert "Pour ne plus recevoir" not in mails["kossi@example.fr"]
