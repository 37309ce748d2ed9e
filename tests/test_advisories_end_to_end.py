"""Issue 18, items 4 and 6, across the two services (real PostgreSQL, Kafka and SMTP
sink): someone in Togo subscribes to Libya's advisories through the returnees API and
confirms by the link mailed by notifications; an analyst proposes Libya for the
watchlist, cannot publish it themselves (four-eyes), a second analyst does; the
advisory reaches the members living in Libya and the subscriber, once each, in their
language, and nobody else; after the subscriber's one-step unsubscribe the next advisory
reaches the members only."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from notifications_testing import add_recipient, deliveries_settled
from sqlalchemy import select

from diaspora_devstack.mailbox import Mailbox
from diaspora_devstack.testing import app_url, asyncpg_url, publish_outbox, serve_app, wait_until
from diaspora_identity.testing import LocalIssuer, Persona
from notifications.advisories.tables import subscribers
from notifications.bootstrap import bootstrap as notifications_bootstrap
from notifications.entrypoints.worker import run as notifications_worker
from notifications.resources import Notifications
from notifications.settings import NotificationsSettings
from returnees.bootstrap import bootstrap as returnees_bootstrap
from returnees.entrypoints.http import build_app
from returnees.resources import Returnees
from returnees.settings import ReturneesSettings
from returnees.tables import outbox as returnees_outbox

pytestmark = pytest.mark.integration

LINK = re.compile(r"https?://\S+/subscriptions/(confirm|unsubscribe)\?token=([A-Za-z0-9_\-.]+)")


@pytest.fixture(autouse=True)
def _events_in_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    # Crypto-shredding is tests/test_crypto_shredding.py's business.
    monkeypatch.setenv("RETURNEES_EVENT_ENCRYPTION", "false")
    monkeypatch.setenv("NOTIFICATIONS_EVENT_ENCRYPTION", "false")


@pytest.fixture
async def returnees(
    returnees_database: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    identity_provider: LocalIssuer,
) -> AsyncIterator[Returnees]:
    service = returnees_bootstrap(
        ReturneesSettings(
            database_url=asyncpg_url(app_url(returnees_database, "returnees")),
            kafka_bootstrap=kafka_bootstrap,
            topic_prefix=topic_prefix,
            environment="test",
            json_logs=False,
            oidc_issuer=identity_provider.issuer,
            oidc_audience=identity_provider.audience,
            oidc_jwks_min_refresh_seconds=0,
        )
    )
    yield service
    await service.close()


@pytest.fixture
async def notifications(
    notifications_database: str, kafka_bootstrap: str, topic_prefix: str, mailbox: Mailbox
) -> AsyncIterator[Notifications]:
    service = notifications_bootstrap(
        NotificationsSettings(
            database_url=asyncpg_url(app_url(notifications_database, "notifications")),
            kafka_bootstrap=kafka_bootstrap,
            topic_prefix=topic_prefix,
            environment="test",
            smtp_port=mailbox.port,
            json_logs=False,
        )
    )
    stop = asyncio.Event()
    task = asyncio.create_task(notifications_worker(service, stop))
    yield service
    stop.set()
    await asyncio.wait_for(task, timeout=30)


async def relay(service: Returnees) -> None:
    """The returnees relay's work: its outbox onto the broker."""
    await publish_outbox(
        service.engine,
        returnees_outbox,
        kafka_bootstrap=service.settings.kafka_bootstrap,
        topic_prefix=service.settings.topic_prefix,
        client_id="returnees-test-relay",
    )


def link_in(mailbox: Mailbox, to: str, kind: str) -> str:
    for mail in reversed(mailbox.messages):
        if mail.recipients == (to,):
            for found in LINK.finditer(mail.text()):
                if found.group(1) == kind:
                    return found.group(2)
    raise AssertionError(f"no {kind} link mailed to {to}")


async def publish_advisory(
    http: httpx.AsyncClient, issuer: LocalIssuer, title: str
) -> dict[str, Any]:
    afi = issuer.headers(Persona(subject="analyst-afi", roles=("analyst",)))
    edem = issuer.headers(Persona(subject="analyst-edem", roles=("analyst",)))
    entry = (
        await http.post(
            "/countries/watchlist",
            json={
                "country": "LY",
                "level": "avoid",
                "title": {"fr": title, "en": f"{title} (en)"},
                "text": {
                    "fr": "Passeports confisqués et salaires impayés signalés.",
                    "en": "Confiscated passports and unpaid wages are reported.",
                },
                "rationale": "Signalements répétés.",
            },
            headers=afi,
        )
    ).json()
    path = f"/countries/watchlist/{entry['id']}/transitions"
    assert (await http.post(path, json={"action": "submit"}, headers=afi)).status_code == 200
    # Four-eyes: the proposer is refused, a second analyst publishes.
    assert (await http.post(path, json={"action": "publish"}, headers=afi)).status_code == 403
    published = await http.post(path, json={"action": "publish"}, headers=edem)
    assert published.status_code == 200, published.text
    return dict(published.json())


async def test_a_published_entry_reaches_members_there_and_subscribers_once_each(
    returnees: Returnees,
    notifications: Notifications,
    identity_provider: LocalIssuer,
    mailbox: Mailbox,
) -> None:
    await add_recipient(notifications, given_name="Kossi", email="kossi@example.org", country="LY")
    await add_recipient(
        notifications, given_name="Ama", email="ama@example.org", country="LY", language="en"
    )
    await add_recipient(notifications, given_name="Yao", email="yao@example.org", country="FR")

    async with (
        serve_app(build_app(returnees)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):
        subscribed = await http.post(
            "/subscriptions",
            json={
                "channel": "email",
                "address": "kafui@example.tg",
                "language": "en",
                "awareness": False,
                "countries": ["LY"],
                "consent": {"text_version": "2026-12", "accepted": True},
            },
        )
        assert subscribed.status_code == 202, subscribed.text
        await relay(returnees)
        await wait_until(lambda: len(mailbox.messages) >= 1, timeout=30, message="confirmation")
        token = link_in(mailbox, "kafui@example.tg", "confirm")
        confirmed = await http.get("/subscriptions/confirm", params={"token": token})
        assert confirmed.status_code == 200
        await relay(returnees)
        await wait_until(lambda: _subscriber(notifications, "confirmed_at"), timeout=30)

        before = len(mailbox.messages)
        await publish_advisory(http, identity_provider, "Risques graves")
        await relay(returnees)
        await wait_until(lambda: len(mailbox.messages) >= before + 3, timeout=30, message="sent")
        await wait_until(lambda: deliveries_settled(notifications), timeout=30, message="done")
        told = sorted((m.recipients[0], m.subject) for m in mailbox.messages[before:])
        assert told == [
            ("ama@example.org", "Advisory for migrant workers: Libya - Risques graves (en)"),
            ("kafui@example.tg", "Advisory for migrant workers: Libya - Risques graves (en)"),
            ("kossi@example.org", "Avis aux travailleurs migrants : Libye - Risques graves"),
        ]

        # One step, no login: the link in the advisory.
        leave = link_in(mailbox, "kafui@example.tg", "unsubscribe")
        left = await http.get("/subscriptions/unsubscribe", params={"token": leave})
        assert left.status_code == 200
        await relay(returnees)
        coordinator = identity_provider.headers(
            Persona(subject="coord", roles=("ministry_coordinator",))
        )
        first = (await http.get("/countries/watchlist", params={"country": "LY"})).json()
        entry_id = first["items"][0]["id"]
        withdrawn = await http.post(
            f"/countries/watchlist/{entry_id}/transitions",
            json={"action": "withdraw"},
            headers=coordinator,
        )
        assert withdrawn.status_code == 200
        await wait_until(lambda: _subscriber(notifications, "unsubscribed_at"), timeout=30)
        before = len(mailbox.messages)
        await publish_advisory(http, identity_provider, "Mise à jour")
        await relay(returnees)
        await wait_until(lambda: len(mailbox.messages) >= before + 2, timeout=30, message="again")
        await wait_until(lambda: deliveries_settled(notifications), timeout=30, message="done")
        assert sorted(m.recipients[0] for m in mailbox.messages[before:]) == [
            "ama@example.org",
            "kossi@example.org",
        ]


async def _subscriber(service: Notifications, column: str) -> bool:
    """Notifications has applied the subscriber's confirmation (or unsubscription)."""
    async with service.sessions() as session:
        found = await session.scalar(
            select(subscribers.c[column]).where(subscribers.c[column].is_not(None))
        )
    return found is not None
