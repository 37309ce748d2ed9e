"""Update campaign end to end (registry, Kafka, notifications, SMTP), and the freshness
score: stale profiles are marked once per period and the person gets a reminder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from notifications_testing import confirm_email, deliveries_settled, wait_worker_consumed
from sqlalchemy import func, insert, select

from diaspora_devstack.mailbox import Mailbox
from diaspora_devstack.testing import asyncpg_url, serve_app, wait_until
from diaspora_events.contracts.registry import MemberMarkedStaleV1
from diaspora_events.outbox import OutboxRelay
from diaspora_identity.testing import LocalIssuer, citizen, officer
from notifications.bootstrap import bootstrap as notifications_bootstrap
from notifications.deliveries.tables import deliveries
from notifications.entrypoints.worker import run as notifications_worker
from notifications.preferences.tables import preferences
from notifications.settings import NotificationsSettings
from registry.bootstrap import bootstrap
from registry.entrypoints.http import build_app
from registry.entrypoints.worker import run
from registry.freshness.service import MONTH, StaleCampaign, freshness
from registry.resources import Registry
from registry.settings import RegistrySettings
from registry.statistics.tables import stale_marks
from registry.tables import outbox

pytestmark = pytest.mark.integration


@pytest.fixture
async def platform(
    registry_database: str,
    notifications_database: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    identity_provider: LocalIssuer,
    mailbox: Mailbox,
) -> AsyncIterator[Registry]:
    """Registry (API, relay, worker) and the notifications worker, on one topic prefix."""
    registry = bootstrap(
        RegistrySettings(
            database_url=asyncpg_url(registry_database),
            kafka_bootstrap=kafka_bootstrap,
            topic_prefix=topic_prefix,
            environment="test",
            json_logs=False,
            oidc_issuer=identity_provider.issuer,
            oidc_jwks_min_refresh_seconds=0,
        )
    )
    notifications = notifications_bootstrap(
        NotificationsSettings(
            database_url=asyncpg_url(notifications_database),
            kafka_bootstrap=kafka_bootstrap,
            topic_prefix=topic_prefix,
            environment="test",
            smtp_port=mailbox.port,  # type: ignore[attr-defined]
            json_logs=False,
        )
    )
    relay = OutboxRelay(
        engine=registry.engine,
        table=outbox,
        bootstrap_servers=kafka_bootstrap,
        client_id="registry-relay-test",
        topic_prefix=topic_prefix,
    )
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(run(registry, stop)),
        asyncio.create_task(relay.run(stop)),
        asyncio.create_task(notifications_worker(notifications, stop)),
    ]
    registry.notifications = notifications  # type: ignore[attr-defined]
    yield registry
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    await registry.close()


@pytest.fixture
async def api(platform: Registry) -> AsyncIterator[str]:
    async with serve_app(build_app(platform)) as base_url:
        yield base_url


def body(name: str, email: str, **extra: Any) -> dict[str, Any]:
    return {
        "given_name": name,
        "family_name": "Agbéko",
        "date_of_birth": "1985-06-01",
        "country_of_residence": "FR",
        "email": email,
        "phone": "+33612345678",
        **extra,
    }


def _subjects(mailbox: Mailbox, address: str) -> list[str]:
    return [m.subject for m in mailbox.messages if address in m.recipients]  # type: ignore[attr-defined]


async def test_stale_profiles_are_marked_once_per_period_and_reminded(
    platform: Registry, api: str, identity_provider: LocalIssuer, mailbox: Mailbox
) -> None:
    ama, kofi = citizen("ama-stale"), citizen("kofi-stale")
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        first = await client.post(
            "/members",
            json=body("Ama", "ama.stale@example.org", preferred_language="en"),
            headers=identity_provider.headers(ama),
        )
        assert first.status_code == 201, first.text
        second = await client.post(
            "/members",
            json=body("Kofi", "kofi.stale@example.org"),
            headers=identity_provider.headers(kofi),
        )
        assert second.status_code == 201, second.text
    ama_id, kofi_id = UUID(first.json()["id"]), UUID(second.json()["id"])
    await wait_until(
        lambda: len(mailbox.messages) >= 2,  # type: ignore[attr-defined]
        timeout=60,
        message="verification emails",
    )
    # Both confirm their address (the first email verifies it); the welcomes follow.
    notifications = platform.notifications  # type: ignore[attr-defined]
    for mail in list(mailbox.messages):  # type: ignore[attr-defined]
        await confirm_email(notifications, mail.text())
    await wait_until(
        lambda: len(mailbox.messages) >= 4,  # type: ignore[attr-defined]
        timeout=60,
        message="welcome emails",
    )
    # Kofi silenced the reminders in his notification preferences.
    async with notifications.sessions() as session, session.begin():
        await session.execute(
            insert(preferences).values(
                member_id=kofi_id, channels=["email", "inbox"], opted_out=["profile_reminders"]
            )
        )

    campaign = StaleCampaign(
        sessions=platform.sessions, outbox=platform.outbox, after_months=12, batch_size=1
    )
    now = datetime.now(UTC)
    # Six months on: nobody is stale yet.
    assert await campaign.run_once(now=now + 6 * MONTH) == 0
    # Thirteen months on: both are, in batches of one; a second run (a restart) marks nobody.
    later = now + 13 * MONTH
    assert await campaign.run_once(now=later) == 2
    assert await campaign.run_once(now=later) == 0

    await wait_until(
        lambda: any("up to date" in s for s in _subjects(mailbox, "ama.stale@example.org")),
        timeout=60,
        message="the reminder email",
    )
    reminder = next(
        m
        for m in mailbox.messages  # type: ignore[attr-defined]
        if "ama.stale@example.org" in m.recipients and "up to date" in m.subject
    )
    assert "Hello Ama Agbéko" in reminder.text()
    assert str(ama_id) in reminder.text()

    async def kofi_skipped() -> bool:
        async with notifications.sessions() as session:
            found = await session.execute(
                select(func.count())
                .select_from(deliveries)
                .where(deliveries.c.recipient_id == kofi_id)
            )
            return int(found.scalar_one()) == 2  # the verification and the welcome only

    # The reminder event for Kofi went through too: every outbox row published, consumed
    # by the notifications worker (its group committed the end of the topic), and nothing
    # it queued is pending. Only then does "no reminder for Kofi" mean anything.
    async def outbox_published() -> bool:
        async with platform.sessions() as session:
            left = await session.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            )
        return left == 0

    await wait_until(outbox_published, timeout=30, message="the registry's outbox published")
    await wait_worker_consumed(notifications, MemberMarkedStaleV1.topic)
    await wait_until(
        lambda: deliveries_settled(notifications), timeout=30, message="deliveries sent"
    )
    assert await kofi_skipped()
    assert not any("à jour" in s for s in _subjects(mailbox, "kofi.stale@example.org"))

    # Ama confirms: a new period starts; she is stale again only a period after that.
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        confirmed = await client.post(
            f"/members/{ama_id}/confirm", headers=identity_provider.headers(ama)
        )
        assert confirmed.status_code in (200, 201), confirmed.text
    # Her new period runs from the confirmation (today): still fresh six months on, stale
    # (once more, once) thirteen months on; Kofi's period has not changed, he stays marked.
    assert await campaign.run_once(now=now + 6 * MONTH) == 0
    assert await campaign.run_once(now=later) == 1
    assert await campaign.run_once(now=later) == 0
    async with platform.sessions() as session:
        marks = (await session.execute(select(stale_marks.c.member_id))).all()
    assert sorted(str(m.member_id) for m in marks) == sorted(
        [str(ama_id), str(kofi_id), str(ama_id)]
    )


async def test_freshness_score_endpoint_for_the_person_and_officers(
    platform: Registry, api: str, identity_provider: LocalIssuer
) -> None:
    ama = citizen("ama-fresh")
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        created = await client.post(
            "/members",
            json=body(
                "Ama",
                "ama.fresh@example.org",
                city="Lyon",
                languages=["fr", "ee"],
                occupations=[{"isco_code": "2211"}],
            ),
            headers=identity_provider.headers(ama),
        )
        member_id = created.json()["id"]
        own = await client.get(
            f"/members/{member_id}/freshness", headers=identity_provider.headers(ama)
        )
        assert own.status_code == 200, own.text
        score = own.json()
        # Just registered: recency 1; 3 of 6 key fields (city, occupations, languages).
        assert score["recency"] == 1.0
        assert score["completeness"] == 0.5
        assert score["score"] == 0.85
        assert score["stale"] is False
        assert set(score["missing"]) == {"skills", "education", "availability"}
        paris = await client.get(
            f"/members/{member_id}/freshness",
            headers=identity_provider.headers(officer("fr-paris")),
        )
        assert paris.status_code == 200
        berlin = await client.get(
            f"/members/{member_id}/freshness",
            headers=identity_provider.headers(officer("de-berlin")),
        )
        assert berlin.status_code == 404


def test_freshness_score_decays_with_time_and_rises_with_completeness() -> None:
    registered = datetime(2025, 1, 1, tzinfo=UTC)
    view: dict[str, Any] = {"registered_at": registered, "last_confirmed_at": None}
    fresh = freshness(view, now=registered, stale_after_months=12)
    assert (fresh.recency, fresh.completeness, fresh.score) == (1.0, 0.0, 0.7)
    stale = freshness(view, now=registered + 12 * MONTH, stale_after_months=12)
    assert stale.recency == 0.5
    assert stale.stale_since == registered + 12 * MONTH
    gone = freshness(view, now=registered + timedelta(days=3000), stale_after_months=12)
    assert gone.score == 0.0
    full = {
        **view,
        "city": {"name": "Lyon"},
        "occupations": [{"isco_code": "2211"}],
        "skills": [{"label": "x"}],
        "education": [{"isced_level": 6}],
        "languages": ["fr"],
        "availability": {"mission_types": ["medical"]},
    }
    assert freshness(full, now=registered, stale_after_months=12).score == 1.0
