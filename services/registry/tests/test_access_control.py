"""Who may do what in the registry: policy, jurisdictions, audit trail (real database)."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from diaspora_devstack.testing import asyncpg_url
from diaspora_identity.testing import (
    LocalIssuer,
    Persona,
    admin,
    analyst,
    citizen,
    officer,
    service_account,
)
from registry.members.embassies import reconcile_embassies
from registry.members.tables import members
from registry.resources import Registry
from registry.tables import audit_log, outbox

pytestmark = pytest.mark.integration

PERSONAL = {"id", "given_name", "family_name", "date_of_birth", "email", "phone", "registered_by"}


def person(**overrides: Any) -> dict[str, Any]:
    body = {
        "given_name": "Akossiwa",
        "family_name": "Mensah",
        "date_of_birth": "1990-04-27",
        "country_of_residence": "FR",
        "email": "akossiwa.mensah@example.org",
        "phone": "+33612345678",
        # Staff filing for someone attest how they consented (a citizen's own is implied).
        "consent_recorded": {"method": "signed_form"},
    }
    body.update(overrides)
    return body


class As:
    """Requests to the registry as one persona."""

    def __init__(self, base_url: str, issuer: LocalIssuer, persona: Persona) -> None:
        self.client = httpx.AsyncClient(
            base_url=base_url, timeout=10, headers=issuer.headers(persona)
        )

    async def __aenter__(self) -> httpx.AsyncClient:
        return self.client

    async def __aexit__(self, *_exc: object) -> None:
        await self.client.aclose()


async def test_no_token_is_401_with_a_bearer_challenge(anonymous: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/members"),
        ("GET", "/members/01a2205f-7f73-75bf-bdda-60145c9948cd"),
        ("GET", "/members/search?q=ab"),
        ("GET", "/members/export"),
        ("POST", "/members"),
    ]:
        response = await anonymous.request(method, path, json=person())
        assert response.status_code == 401, (method, path)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == 'Bearer realm="diaspora"'
        assert response.json()["detail"].startswith("no bearer token")
    garbage = await anonymous.get("/members", headers={"Authorization": "Bearer not.a.jwt"})
    assert garbage.status_code == 401
    assert 'error="invalid_token"' in garbage.headers["www-authenticate"]
    basic = await anonymous.get("/members", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert 'error="invalid_request"' in basic.headers["www-authenticate"]


async def test_self_registration_links_the_person_once(
    registry_url: str, identity_provider: LocalIssuer, registry: Registry
) -> None:
    me = citizen()
    async with As(registry_url, identity_provider, me) as client:
        first = await client.post("/members", json=person())
        assert first.status_code == 201, first.text
        again = await client.post("/members", json=person(given_name="Other"))
        assert again.status_code == 409
        assert again.json()["member_id"] == first.json()["id"]
        listed = await client.get("/members")
        assert [m["id"] for m in listed.json()["items"]] == [first.json()["id"]]
    async with registry.sessions() as session:
        row = (await session.execute(select(members))).one()
        audits = (await session.execute(select(func.count()).select_from(audit_log))).scalar()
    assert row.owner_subject == me.subject
    assert row.registered_by is None
    assert audits == 0  # a person's own data: nothing to audit


@pytest.mark.parametrize(
    "persona",
    [
        # An officer who is also a citizen, registering someone outside Paris's jurisdiction.
        Persona("officer-and-citizen", ("embassy_officer", "citizen"), embassies=("fr-paris",)),
        # An analyst (no create grant at all) who is also a citizen.
        Persona("analyst-and-citizen", ("analyst", "citizen")),
    ],
    ids=["officer", "analyst"],
)
async def test_staff_tokens_never_fall_back_to_self_registration(
    registry_url: str, identity_provider: LocalIssuer, registry: Registry, persona: Persona
) -> None:
    """A staff role whose grant does not allow the registration is refused (403), never
    turned into a self-registration owned by the staff account with self_service consent."""
    async with As(registry_url, identity_provider, persona) as client:
        refused = await client.post("/members", json=person(country_of_residence="DE"))
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    async with registry.sessions() as session:
        stored = (await session.execute(select(func.count()).select_from(members))).scalar()
        events = (await session.execute(select(func.count()).select_from(outbox))).scalar()
    assert (stored, events) == (0, 0)


async def test_officers_register_within_their_jurisdiction_only(
    registry_url: str, identity_provider: LocalIssuer, registry: Registry
) -> None:
    paris = officer("fr-paris")
    async with As(registry_url, identity_provider, paris) as client:
        inside = await client.post("/members", json=person(country_of_residence="MC"))
        assert inside.status_code == 201, inside.text
        assert inside.json()["embassy_id"] == "fr-paris"
        assert inside.json()["registered_by"] == paris.subject
        outside = await client.post("/members", json=person(country_of_residence="DE"))
        assert outside.status_code == 403
        assert outside.json()["title"] == "Outside your jurisdiction"
    async with registry.sessions() as session:
        entry = (await session.execute(select(audit_log))).one()
        types = sorted(r.event_type for r in await session.execute(select(outbox)))
    assert (entry.action, entry.actor_subject, entry.actor_roles) == (
        "create",
        paris.subject,
        ["embassy_officer"],
    )
    assert types == ["registry.audit.recorded", "registry.member.registered"]


async def test_an_officers_read_shows_in_the_persons_access_log(
    registry_url: str, identity_provider: LocalIssuer, registry: Registry
) -> None:
    me = citizen()
    paris = officer("fr-paris")
    async with As(registry_url, identity_provider, me) as mine:
        member_id = (await mine.post("/members", json=person())).json()["id"]
        assert (await mine.get(f"/members/{member_id}/access-log")).json()["items"] == []
    async with As(registry_url, identity_provider, paris) as staff:
        read = await staff.get(f"/members/{member_id}", headers={"X-Request-ID": "req-42"})
        assert read.status_code == 200
        assert read.headers["x-request-id"] == "req-42"
        refused = await staff.get(f"/members/{member_id}/access-log")
        assert refused.status_code == 403
    async with As(registry_url, identity_provider, me) as mine:
        log = (await mine.get(f"/members/{member_id}/access-log")).json()["items"]
    assert len(log) == 1
    assert log[0]["actor_subject"] == paris.subject
    assert log[0]["actor_roles"] == ["embassy_officer"]
    assert log[0]["action"] == "read"
    assert "email" in log[0]["fields"]
    async with registry.sessions() as session:
        entry = (await session.execute(select(audit_log))).one()
    assert entry.request_id == "req-42"
    assert entry.client_address == "127.0.0.1"
    assert entry.trace_id
    assert len(entry.trace_id) == 32


async def test_the_audit_log_is_append_only_even_for_its_owner(
    registry_url: str, identity_provider: LocalIssuer, registry: Registry, registry_database: str
) -> None:
    async with As(registry_url, identity_provider, officer("fr-paris")) as staff:
        assert (await staff.post("/members", json=person())).status_code == 201
    # As the owner (the service itself runs as a role without these rights at all:
    # test_audit_integrity.py): the trigger refuses them anyway.
    owner = create_async_engine(asyncpg_url(registry_database))
    try:
        for statement in (
            "UPDATE audit_log SET actor_subject = 'someone-else'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
        ):
            with pytest.raises(DBAPIError, match="append-only"):
                async with owner.begin() as connection:
                    await connection.execute(text(statement))
    finally:
        await owner.dispose()
    async with registry.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(audit_log))).scalar() == 1


async def test_analysts_get_aggregates_only(
    registry_url: str, identity_provider: LocalIssuer
) -> None:
    """Member rows (a list or an export, even without personal fields) give exact counts
    per country and embassy, which defeats small-cell suppression: analysts get 403 there
    and read the suppressed statistics instead."""
    async with As(registry_url, identity_provider, admin()) as staff:
        for n in range(6):
            created = await staff.post("/members", json=person(email=f"p{n}@example.org"))
            assert created.status_code == 201
        await staff.post("/members", json=person(country_of_residence="DE"))
        member_id = created.json()["id"]
    async with As(registry_url, identity_provider, analyst()) as client:
        for path in (
            "/members",
            "/members?country=DE",
            "/members/export",
            f"/members/{member_id}",
            "/members/search?q=Mensah",
        ):
            refused = await client.get(path)
            assert refused.status_code == 403, path
            assert refused.headers["content-type"] == "application/problem+json"
            assert "Mensah" not in refused.text
        # Counts come from the statistics read model (test_statistics.py checks the figures).
        stats = await client.get("/statistics/members", params={"by": "embassy"})
        assert stats.status_code == 200
        assert (await client.get("/statistics/members?exact=true")).status_code == 403


async def test_list_filters_and_pagination_stay_within_scope(
    registry_url: str, identity_provider: LocalIssuer
) -> None:
    async with As(registry_url, identity_provider, admin()) as staff:
        for country in ["FR", "FR", "FR", "BE", "DE"]:
            await staff.post("/members", json=person(country_of_residence=country))
    async with As(registry_url, identity_provider, officer("fr-paris", "be-brussels")) as client:
        first = (await client.get("/members", params={"limit": 2})).json()
        second = (await client.get("/members", params={"limit": 2, "offset": 2})).json()
        assert first["next_offset"] == 2
        assert second["next_offset"] is None
        ids = [m["id"] for m in first["items"] + second["items"]]
        assert len(set(ids)) == 4
        belgium = (await client.get("/members", params={"country": "be"})).json()["items"]
        assert [m["country_of_residence"] for m in belgium] == ["BE"]
        germany = (await client.get("/members", params={"embassy": "de-berlin"})).json()
        assert germany["items"] == []
        unknown = await client.get("/members", params={"embassy": "xx-nowhere"})
        assert unknown.status_code == 422
    async with As(registry_url, identity_provider, service_account("statistics-office")) as svc:
        assert len((await svc.get("/members")).json()["items"]) == 5


async def test_embassies_are_rederived_when_the_jurisdictions_change(
    registry_url: str, identity_provider: LocalIssuer, registry: Registry
) -> None:
    async with As(registry_url, identity_provider, admin()) as staff:
        await staff.post("/members", json=person(country_of_residence="IT"))
    async with registry.sessions() as session, session.begin():
        await session.execute(text("UPDATE members SET embassy_id = 'de-berlin'"))
        await session.execute(text("UPDATE member_match_keys SET embassy_id = 'de-berlin'"))
    assert await reconcile_embassies(registry.sessions, registry.identity.jurisdictions) == 1
    async with registry.sessions() as session:
        assert (await session.execute(select(members.c.embassy_id))).scalar() == "fr-paris"
        # The duplicate-detection keys follow (a case goes to the member's embassy).
        keys = await session.execute(text("SELECT embassy_id FROM member_match_keys"))
        assert keys.scalars().all() == ["fr-paris"]


async def test_citizens_export_their_own_record(
    registry_url: str, identity_provider: LocalIssuer
) -> None:
    me = citizen()
    async with As(registry_url, identity_provider, admin()) as staff:
        await staff.post("/members", json=person(given_name="Somebody"))
    async with As(registry_url, identity_provider, me) as client:
        await client.post("/members", json=person(given_name="=HYPERLINK(evil)"))
        export = await client.get("/members/export")
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == 1
    assert rows[0]["given_name"] == "'=HYPERLINK(evil)"  # no formula in a spreadsheet
    assert rows[0]["phone"] == "+33612345678"
