"""Notifications' audit trail: staff reads of delivery logs, template saves and previews
go to the append-only ``audit_log`` and out on ``notifications.audit`` (issue 15)."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
from notifications_testing import add_recipient, events_on, publish_outbox
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from diaspora_devstack.testing import free_port, serve_app
from diaspora_events.shredding import SealBroken, unseal
from diaspora_events.topics import NOTIFICATIONS_AUDIT
from diaspora_identity.testing import LocalIssuer, admin, citizen, officer
from notifications.bootstrap import bootstrap
from notifications.entrypoints.http import build_app
from notifications.resources import Notifications
from notifications.settings import NotificationsSettings
from notifications.tables import audit_log, outbox

pytestmark = pytest.mark.integration

SettingsFactory = Callable[..., NotificationsSettings]


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


def _key_service(dek: bytes, asked: list[list[str]]) -> Starlette:
    """The registry's ``POST /internal/keys``, as far as a writer needs it: every subject
    asked has ``dek`` (the bearer token must be there)."""

    async def keys(request: Request) -> JSONResponse:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return JSONResponse({}, status_code=401)
        subjects = (await request.json())["subject_ids"]
        asked.append(subjects)
        value = base64.b64encode(dek).decode()
        return JSONResponse(
            {"keys": [{"subject_id": s, "status": "active", "dek": value} for s in subjects]}
        )

    return Starlette(routes=[Route("/internal/keys", keys, methods=["POST"])])


@asynccontextmanager
async def _sealing_service(
    make_settings: SettingsFactory,
    identity_provider: LocalIssuer,
    monkeypatch: pytest.MonkeyPatch,
    keys_url: str,
) -> AsyncIterator[tuple[Notifications, httpx.AsyncClient]]:
    monkeypatch.setenv("NOTIFICATIONS_EVENT_KEYS_URL", keys_url)
    monkeypatch.setenv("NOTIFICATIONS_EVENT_KEYS_TOKEN_URL", identity_provider.issuer + "/token")
    service = bootstrap(
        make_settings(
            oidc_issuer=identity_provider.issuer,
            oidc_audience=identity_provider.audience,
            oidc_jwks_min_refresh_seconds=0,
        )
    )
    try:
        async with (
            serve_app(build_app(service)) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=30) as http,
        ):
            yield service, http
    finally:
        await service.close()


@pytest.mark.sealed
async def test_audit_entries_leave_sealed_with_the_member_s_key(
    make_settings: SettingsFactory,
    identity_provider: LocalIssuer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dek, asked = os.urandom(32), []
    async with (
        serve_app(_key_service(dek, asked)) as keys_url,
        _sealing_service(make_settings, identity_provider, monkeypatch, keys_url) as (
            service,
            http,
        ),
    ):
        member = await add_recipient(service, email="ama@example.fr", country="FR")
        persona = officer("fr-paris")
        read = await http.get(
            f"/recipients/{member}/deliveries", headers=identity_provider.headers(persona)
        )
        assert read.status_code == 200, read.text
        assert asked == [[str(member)]]
        async with service.sessions() as session:
            row = (
                await session.execute(
                    select(outbox.c.event_id, outbox.c.value).where(
                        outbox.c.event_type == "notifications.audit.recorded"
                    )
                )
            ).one()
    data = json.loads(row.value)
    # The staff member's subject and address travel sealed for the member read...
    assert "actor_subject" not in data
    assert "client_address" not in data
    assert data["_sealed"]["sub"] == str(member)
    assert persona.subject not in row.value.decode()
    # ...and open with the member's key only.
    opened = unseal(
        data,
        event_id=str(row.event_id),
        event_type="notifications.audit.recorded",
        version=1,
        data_key=dek,
    )
    assert opened["actor_subject"] == persona.subject
    with pytest.raises(SealBroken):
        unseal(
            data,
            event_id=str(row.event_id),
            event_type="notifications.audit.recorded",
            version=1,
            data_key=os.urandom(32),
        )


@pytest.mark.sealed
async def test_an_audited_read_answers_503_while_the_key_service_is_away(
    make_settings: SettingsFactory,
    identity_provider: LocalIssuer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    async with _sealing_service(make_settings, identity_provider, monkeypatch, nobody) as (
        service,
        http,
    ):
        member = await add_recipient(service, email="ama@example.fr", country="FR")
        read = await http.get(
            f"/recipients/{member}/deliveries",
            headers=identity_provider.headers(officer("fr-paris")),
        )
        assert read.status_code == 503, read.text
        assert read.headers["content-type"].startswith("application/problem+json")
        assert read.headers["retry-after"] == "5"
        # Nothing was read without its audit entry.
        assert await _audit_rows(service) == []
