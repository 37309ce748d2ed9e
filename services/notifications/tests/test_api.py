"""Templates (admin), preferences and inbox (citizen), resend and campaigns over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from notifications_testing import add_recipient, deliveries_of
from sqlalchemy import select

from diaspora_identity.testing import LocalIssuer, admin, citizen, coordinator, officer
from notifications.deliveries.dispatch import notify
from notifications.deliveries.tables import deliveries
from notifications.resources import Notifications

pytestmark = pytest.mark.integration


async def test_admin_saves_versions_checks_variables_and_previews_in_both_languages(
    client: httpx.AsyncClient, identity_provider: LocalIssuer, api_service: Notifications
) -> None:
    root = identity_provider.headers(admin())
    listed = (await client.get("/templates", headers=root)).json()
    keys = {(t["key"], t["language"]) for t in listed["items"]}
    assert {("member_welcome", "fr"), ("member_welcome", "en")} <= keys

    # Only the admin (policy table): a coordinator and a citizen are refused.
    for persona in (coordinator(), citizen()):
        assert (
            await client.get("/templates", headers=identity_provider.headers(persona))
        ).status_code == 403

    # An undeclared variable is refused at save time, with the name.
    broken = {
        "subject": "Bonjour {{ given_name }}",
        "body": "Votre rendez-vous le {{ appointment_date | format_date('long') }}",
        "sms": "{{ given_name }}",
    }
    refused = await client.put("/templates/member_welcome/fr", json=broken, headers=root)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "appointment_date" in refused.text
    # Declaring it does not help: the registration event does not provide it.
    declared = {**broken, "variables": {"given_name": "A", "appointment_date": "2026-05-01"}}
    refused = await client.put("/templates/member_welcome/fr", json=declared, headers=root)
    assert refused.status_code == 422
    assert "provides only" in refused.text
    bad_syntax = {**broken, "body": "{{ given_name "}
    assert (
        await client.put("/templates/member_welcome/fr", json=bad_syntax, headers=root)
    ).status_code == 422

    # A new version: declared variables kept from the previous one.
    saved = await client.put(
        "/templates/member_welcome/fr",
        json={
            "subject": "Bienvenue, {{ given_name }} !",
            "body": (
                "Bonjour {{ given_name }}, inscrit le {{ registered_at | format_date('full') }}."
            ),
            "sms": "Bienvenue {{ given_name }}",
        },
        headers=root,
    )
    assert saved.status_code == 201, saved.text
    assert saved.json()["version"] == 2
    versions = (await client.get("/templates/member_welcome/fr/versions", headers=root)).json()
    assert [v["version"] for v in versions] == [2, 1]

    preview_fr = await client.post(
        "/templates/member_welcome/fr/preview",
        json={"variables": {"given_name": "Kossi", "registered_at": "2026-04-27T10:00:00+00:00"}},
        headers=root,
    )
    assert preview_fr.status_code == 200
    assert preview_fr.json()["body"].strip() == "Bonjour Kossi, inscrit le lundi 27 avril 2026."
    preview_en = await client.post("/templates/member_welcome/en/preview", json={}, headers=root)
    assert "April 27, 2026" in preview_en.json()["body"]  # the declared samples, en locale
    # Sends use the latest active version.
    member = await add_recipient(api_service, email="kossi@example.org", given_name="Kossi")
    async with api_service.sessions() as session, session.begin():
        await notify(
            session,
            api_service.outbox,
            member_id=member,
            template="member_welcome",
            variables={"member_id": str(member), "registered_at": "2026-04-27T10:00:00+00:00"},
            cause_event_id=member,
            available=frozenset({"email", "inbox"}),
        )
    (row,) = await deliveries_of(api_service, member)
    assert (row.template_version, row.subject) == (2, "Bienvenue, Kossi !")
    # A draft (inactive) version is kept but not used.
    draft = await client.put(
        "/templates/member_welcome/fr",
        json={**broken, "body": "draft", "active": False},
        headers=root,
    )
    assert draft.status_code == 201
    assert (await client.get("/templates/member_welcome/fr", headers=root)).json()["version"] == 3


async def test_citizen_preferences_inbox_and_mandatory_categories(
    client: httpx.AsyncClient, identity_provider: LocalIssuer, api_service: Notifications
) -> None:
    member = await add_recipient(api_service, email="ama@example.fr", country="US")
    other = await add_recipient(api_service, email="kofi@example.de", country="DE")
    me = identity_provider.headers(citizen(member_id=member))
    prefs = (await client.get("/me/preferences", headers=me)).json()
    assert prefs["channels"] == ["email", "sms", "inbox"]
    assert prefs["effective_timezone"] == "America/New_York"  # from the country
    mandatory = {c["name"] for c in prefs["categories"] if c["mandatory"]}
    assert mandatory == {"legal", "safety"}

    refused = await client.put(
        "/me/preferences", json={"channels": ["inbox"], "opted_out": ["safety"]}, headers=me
    )
    assert refused.status_code == 422
    assert "cannot be silenced" in refused.text
    ok = await client.put(
        "/me/preferences",
        json={
            "channels": ["inbox", "email"],
            "timezone": "America/Chicago",
            "quiet_hours": {"start": "22:00", "end": "07:00"},
            "opted_out": ["awareness"],
        },
        headers=me,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["effective_timezone"] == "America/Chicago"

    # Messages: opted-out category skipped, safety delivered anyway, into the inbox first.
    async def tell(template: str, person: Any, **variables: Any) -> Any:
        async with api_service.sessions() as session, session.begin():
            return await notify(
                session,
                api_service.outbox,
                member_id=person,
                template=template,
                variables=variables,
                cause_event_id=__import__("uuid").uuid4(),
                available=frozenset({"email", "inbox"}),
            )

    assert await tell("migration_awareness", member, hotline="+228 1") is None
    for n in range(3):
        await tell("safety_alert", member, message=f"Alerte {n}", embassy_phone="+1 202")
    await tell("safety_alert", other, message="Pour Kofi", embassy_phone="+49")

    inbox = (await client.get("/me/inbox", params={"limit": 2}, headers=me)).json()
    assert inbox["unread"] == 3
    assert [m["title"] for m in inbox["items"]] == ["Alerte de sécurité"] * 2
    assert "Alerte 2" in inbox["items"][0]["body"]
    rest = (
        await client.get(
            "/me/inbox", params={"limit": 2, "before": inbox["next_before"]}, headers=me
        )
    ).json()
    assert len(rest["items"]) == 1
    assert rest["next_before"] is None
    first = inbox["items"][0]["id"]
    assert (await client.post(f"/me/inbox/{first}/read", headers=me)).json()["read_at"]
    unread = (await client.get("/me/inbox", params={"unread": True}, headers=me)).json()
    assert unread["unread"] == 2
    assert first not in {m["id"] for m in unread["items"]}
    assert "Pour Kofi" not in str(unread)
    # Someone else's message is not found; staff have no inbox function.
    async with api_service.sessions() as session:
        kofi_message = (
            await session.execute(select(deliveries.c.id).where(deliveries.c.recipient_id == other))
        ).scalar_one()
    assert (await client.post(f"/me/inbox/{kofi_message}/read", headers=me)).status_code == 404
    staff = identity_provider.headers(officer("fr-paris"))
    assert (await client.get("/me/inbox", headers=staff)).status_code == 403


async def test_resend_within_scope_creates_a_new_attempt(
    client: httpx.AsyncClient, identity_provider: LocalIssuer, api_service: Notifications
) -> None:
    member = await add_recipient(api_service, email="afi@example.fr", country="FR")
    async with api_service.sessions() as session, session.begin():
        await notify(
            session,
            api_service.outbox,
            member_id=member,
            template="member_welcome",
            variables={"member_id": str(member), "registered_at": "2026-04-27"},
            cause_event_id=member,
            available=frozenset({"email", "inbox"}),
        )
    (original,) = await deliveries_of(api_service, member)
    path = f"/deliveries/{original.id}/resend"
    assert (
        await client.post(path, headers=identity_provider.headers(officer("de-berlin")))
    ).status_code == 404
    assert (
        await client.post(path, headers=identity_provider.headers(citizen(member_id=member)))
    ).status_code == 403
    paris = identity_provider.headers(officer("fr-paris"))
    first = await client.post(path, headers={**paris, "Idempotency-Key": "k1"})
    again = await client.post(path, headers={**paris, "Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["previous_id"] == str(original.id)
    log = (await client.get(f"/recipients/{member}/deliveries", headers=paris)).json()["items"]
    assert sorted(d["reason"] for d in log) == ["event", "resend"]


async def test_campaign_segment_preview_schedule_and_roles(
    client: httpx.AsyncClient, identity_provider: LocalIssuer, api_service: Notifications
) -> None:
    for n in range(3):
        await add_recipient(
            api_service,
            email=f"fr{n}@example.fr",
            country="FR",
            occupations=["2211"],
            prefs={"consents": ["newsletter"]},
        )
    await add_recipient(
        api_service,
        email="de@example.de",
        country="DE",
        occupations=["2211"],
        prefs={"consents": ["newsletter"]},
    )
    await add_recipient(
        api_service, email="noconsent@example.fr", country="FR", occupations=["2211"]
    )
    await add_recipient(
        api_service,
        email="other@example.fr",
        country="FR",
        occupations=["7411"],
        prefs={"consents": ["newsletter"]},
    )
    boss = identity_provider.headers(coordinator())
    segment = {"countries": ["fr"], "occupations": ["2211"], "newsletter_consent": True}
    size = await client.post(
        "/campaigns/audience", json={"template": "guide_diaspora", "segment": segment}, headers=boss
    )
    assert size.json() == {"audience": 3, "category": "newsletter"}
    # Awareness needs no consent: the person without it is in too.
    size = await client.post(
        "/campaigns/audience",
        json={
            "template": "migration_awareness",
            "segment": {"countries": ["FR"], "occupations": ["2211"]},
        },
        headers=boss,
    )
    assert size.json()["audience"] == 4

    body = {"name": "Guide 2026", "template": "guide_diaspora", "segment": segment}
    missing = await client.post("/campaigns", json=body, headers=boss)
    assert missing.status_code == 422
    assert "guide_url" in missing.text
    variables = {"edition": "2026", "guide_url": "https://x.tg/g", "published_on": "2026-05-01"}
    created = await client.post(
        "/campaigns",
        json={**body, "variables": variables},
        headers={**boss, "Idempotency-Key": "c1"},
    )
    same = await client.post(
        "/campaigns",
        json={**body, "variables": variables},
        headers={**boss, "Idempotency-Key": "c1"},
    )
    assert created.status_code == same.status_code == 201
    assert created.json()["id"] == same.json()["id"]
    assert created.json()["status"] == "draft"
    campaign = created.json()["id"]
    scheduled = await client.post(
        f"/campaigns/{campaign}/schedule",
        json={"send_at": "2030-01-01T09:00:00+00:00"},
        headers=boss,
    )
    assert scheduled.json()["status"] == "scheduled"
    for persona in (citizen(), officer("fr-paris")):
        assert (
            await client.get(f"/campaigns/{campaign}", headers=identity_provider.headers(persona))
        ).status_code == 403
    assert (await client.post(f"/campaigns/{campaign}/cancel", headers=boss)).json()[
        "status"
    ] == "cancelled"
