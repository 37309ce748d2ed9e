"""Notifications' audit trail: staff reads of delivery logs, template saves and previews
go to the append-only ``audit_log`` and out on ``notifications.audit`` (issue 15)."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from diaspora_events.topics import NOTIFICATIONS_AUDIT
from diaspora_identity.testing import LocalIssuer, admin, citizen, officer
from notifications.adapters.orm import audit_log
from notifications.bootstrap import Notifications
from notifications.testing import add_recipient, events_on, publish_outbox

pytestmark = pytest.mark.integration


async def _audit_rows(service: Notifications) -> list[tuple[str, str, str, object]]:
    async with service.sessions() as session:
        rows = await session.execute(select(audit_log).order_by(audit_log.c.id))
        return [(r.actor_subject, r.resource, r.action, r.record_id) for r in rows]


async def test_an_officers_read_of_a_delivery_log_is_audited_and_published(
    client: httpx.AsyncClient, identity_provider: LocalIssuer, api_service: Notifications
) -> None:
    member = await add_recipient(api_service, email="ama@example.fr", country="FR")
    # The person's own read is not an audited staff access.
    own = await client.get(
        f"/recipients/{member}/deliveries",
        headers=identity_provider.headers(citizen(member_id=member)),
    )
    assert own.status_code == 200
    assert await _audit_rows(api_service) == []

    persona = officer("fr-paris")
    read = await client.get(
        f"/recipients/{member}/deliveries", headers=identity_provider.headers(persona)
    )
    assert read.status_code == 200, read.text
    assert await _audit_rows(api_service) == [(persona.subject, "delivery", "list", member)]

    await publish_outbox(api_service)
    events = await events_on(api_service, NOTIFICATIONS_AUDIT, expect=1)
    assert len(events) == 1
    (kind, key, event) = events[0]
    assert (kind, key) == ("notifications.audit.recorded", str(member))
    assert (event.actor_subject, event.resource, event.record_id) == (
        persona.subject,
        "delivery",
        member,
    )
    assert event.fields == ["last_error", "subject"]


async def test_template_saves_and_previews_are_audited_keyed_by_the_template_version(
    client: httpx.AsyncClient, identity_provider: LocalIssuer, api_service: Notifications
) -> None:
    persona = admin()
    root = identity_provider.headers(persona)
    current = (await client.get("/templates/member_welcome/fr", headers=root)).json()
    preview = await client.post("/templates/member_welcome/fr/preview", json={}, headers=root)
    assert preview.status_code == 200
    saved = await client.put(
        "/templates/member_welcome/fr",
        json={"subject": "Bienvenue {{ given_name }}", "body": "Bonjour", "sms": "Bonjour"},
        headers=root,
    )
    assert saved.status_code == 201
    async with api_service.sessions() as session:
        ids = dict(
            (r.version, r.id)
            for r in await session.execute(
                text(
                    "SELECT version, id FROM templates WHERE key = 'member_welcome' "
                    "AND language = 'fr'"
                )
            )
        )
    assert current["version"] == 1
    rows = await _audit_rows(api_service)
    assert rows == [
        (persona.subject, "notification_template", "preview", ids[1]),
        (persona.subject, "notification_template", "save", ids[2]),
    ]
    await publish_outbox(api_service)
    events = await events_on(api_service, NOTIFICATIONS_AUDIT, expect=2)
    assert sorted((e.action, k) for _t, k, e in events) == [
        ("preview", str(ids[1])),
        ("save", str(ids[2])),
    ]


async def test_the_audit_log_is_append_only(
    client: httpx.AsyncClient,
    identity_provider: LocalIssuer,
    api_service: Notifications,
    notifications_database: str,
) -> None:
    root = identity_provider.headers(admin())
    assert (
        await client.post("/templates/member_welcome/fr/preview", json={}, headers=root)
    ).status_code == 200
    assert len(await _audit_rows(api_service)) == 1
    statements = (
        "UPDATE audit_log SET action = 'x'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    )
    for statement in statements:
        # The service's own (runtime) role is not even allowed to try...
        with pytest.raises(DBAPIError, match="permission denied"):
            async with api_service.sessions() as session, session.begin():
                await session.execute(text(statement))
        # ...and the trigger refuses the table's owner too.
        owner = await asyncpg.connect(notifications_database)
        try:
            with pytest.raises(asyncpg.PostgresError, match="append-only"):
                await owner.execute(statement)
        finally:
            await owner.close()
    assert len(await _audit_rows(api_service)) == 1
