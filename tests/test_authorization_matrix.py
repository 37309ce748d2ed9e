"""Authorization matrix through the gateway (real nginx) in front of the real services.

Two citizens (living in France and in Germany) and officers of the embassies in
Paris and Berlin swap object ids on every endpoint that takes one: get, list with
filters, search, export, the access log and the delivery log. Nothing crosses
(OWASP API1 object level, API3 property level, API5 function level): a record
outside the caller's scope is 404 like an unknown one, a function the role lacks
is 403, and an analyst never receives a personal field.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import pytest

from diaspora_devstack.testing import wait_until
from diaspora_identity.testing import Persona, analyst, citizen, officer
from tests.conftest import GatewayFactory, LocalPlatform

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PERSONAL = {"id", "given_name", "family_name", "date_of_birth", "email", "phone", "registered_by"}


@dataclass
class Person:
    persona: Persona
    member_id: str
    email: str
    family_name: str
    headers: dict[str, str]


def body(given: str, family: str, country: str, email: str, phone: str) -> dict[str, Any]:
    return {
        "given_name": given,
        "family_name": family,
        "date_of_birth": "1987-03-12",
        "country_of_residence": country,
        "email": email,
        "phone": phone,
    }


async def self_register(
    client: httpx.AsyncClient, platform: LocalPlatform, data: dict[str, Any]
) -> Person:
    persona = citizen()
    response = await client.post(
        "/api/registry/members", json=data, headers=platform.issuer.headers(persona)
    )
    assert response.status_code == 201, response.text
    member_id = response.json()["id"]
    # The identity provider now knows the person's member id (a Keycloak user attribute).
    linked = citizen(persona.subject, member_id=UUID(member_id))
    return Person(
        linked, member_id, data["email"], data["family_name"], platform.issuer.headers(linked)
    )


def leaks(response: httpx.Response, other: Person) -> bool:
    return any(secret in response.text for secret in (other.member_id, other.email))


async def test_nothing_crosses_between_people_and_embassies(
    platform: LocalPlatform, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway()
    issuer = platform.issuer
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15) as client:
        ama = await self_register(
            client,
            platform,
            body("Ama", "Kouévi", "FR", "ama.kouevi@example.fr", "+33612345678"),
        )
        kofi = await self_register(
            client,
            platform,
            body("Kofi", "Lawson", "DE", "kofi.lawson@example.de", "+4915112345678"),
        )
        paris_officer, berlin_officer = officer("fr-paris"), officer("de-berlin")
        paris = issuer.headers(paris_officer)
        berlin = issuer.headers(berlin_officer)
        people = {"ama": ama, "kofi": kofi}
        own_embassy = {"ama": paris, "kofi": berlin}
        other_embassy = {"ama": berlin, "kofi": paris}
        other_person = {"ama": kofi, "kofi": ama}

        async def get(path: str, headers: dict[str, str], **params: Any) -> httpx.Response:
            return await client.get(path, headers=headers, params=params)

        # The verification emails make a delivery log for each person (registry -> Kafka ->
        # worker).
        async def delivered() -> bool:
            for person in people.values():
                page = await get(
                    f"/api/notifications/recipients/{person.member_id}/deliveries", person.headers
                )
                if page.status_code != 200 or not page.json()["items"]:
                    return False
            return True

        await wait_until(delivered, timeout=60, message="both delivery logs")

        for name, me in people.items():
            other = other_person[name]
            mine_ok, theirs_ko = own_embassy[name], other_embassy[name]

            # --- get one record -------------------------------------------------------------
            def one(member: Person) -> str:
                return f"/api/registry/members/{member.member_id}"

            assert (await get(one(me), me.headers)).status_code == 200
            assert (await get(one(me), mine_ok)).status_code == 200
            for response in (await get(one(other), me.headers), await get(one(me), theirs_ko)):
                assert response.status_code == 404, (name, response.text)
                assert response.json()["title"] == "Member not found"
                # The body echoes the path asked for (instance), never anything of the record.
                assert me.email not in response.text
                assert other.email not in response.text

            # --- list, with every filter pointing at the other side ------------------------
            other_country = "DE" if name == "ama" else "FR"
            other_post = "de-berlin" if name == "ama" else "fr-paris"
            for headers in (me.headers, theirs_ko):
                for params in ({}, {"country": other_country}, {"embassy": other_post}):
                    listed = await get("/api/registry/members", headers, **params)
                    assert listed.status_code == 200
                    target = me if headers is theirs_ko else other
                    assert not leaks(listed, target), (name, params)
            own_list = await get("/api/registry/members", me.headers)
            assert [m["id"] for m in own_list.json()["items"]] == [me.member_id]
            officer_list = await get("/api/registry/members", mine_ok)
            assert [m["id"] for m in officer_list.json()["items"]] == [me.member_id]

            # --- search -------------------------------------------------------------------
            found = await get("/api/registry/members/search", mine_ok, q=me.family_name)
            assert [m["id"] for m in found.json()["items"]] == [me.member_id]
            hidden = await get("/api/registry/members/search", theirs_ko, q=me.family_name)
            assert hidden.json()["items"] == []
            assert not leaks(hidden, me)
            refused = await get("/api/registry/members/search", me.headers, q=other.family_name)
            assert refused.status_code == 403  # citizens have no search function

            # --- export ---------------------------------------------------------------------
            for headers, expected, absent in (
                (me.headers, me, other),
                (mine_ok, me, other),
                (theirs_ko, other, me),
            ):
                export = await get("/api/registry/members/export", headers)
                assert export.status_code == 200
                rows = list(csv.DictReader(io.StringIO(export.text)))
                assert [r["id"] for r in rows] == [expected.member_id]
                assert not leaks(export, absent)
            filtered = await get("/api/registry/members/export", theirs_ko, country=other_country)
            assert not leaks(filtered, me)

            # --- the access log -------------------------------------------------------------
            own_log = await get(f"/api/registry/members/{me.member_id}/access-log", me.headers)
            assert own_log.status_code == 200
            other_log = await get(f"/api/registry/members/{other.member_id}/access-log", me.headers)
            assert other_log.status_code == 404
            staff_log = await get(f"/api/registry/members/{me.member_id}/access-log", mine_ok)
            assert staff_log.status_code == 403

            # --- profile and rights (registry): every route that takes an id ------------------
            record = f"/api/registry/members/{me.member_id}"
            consents = f"{record}/consents"
            # (method, path, body, what the other embassy's officer gets: 404 outside their
            # scope, 403 for the person's own export, a function officers do not have).
            attempts = [
                ("PATCH", record, {"json": {"arrival_year": 2001}}, 404),
                ("POST", f"{record}/confirm", {}, 404),
                ("GET", f"{record}/history", {}, 404),
                ("GET", f"{record}/export", {}, 403),
                ("GET", consents, {}, 404),
                ("PUT", f"{consents}/newsletters", {"json": {"method": "signed_form"}}, 404),
                ("DELETE", f"{consents}/newsletters", {}, 404),
                ("DELETE", record, {}, 404),
            ]
            for method, path, extra, officer_status in attempts:
                # The other person and the other embassy's officer: nothing shown.
                for headers, status in ((other.headers, 404), (theirs_ko, officer_status)):
                    crossed = await client.request(method, path, headers=headers, **extra)
                    assert crossed.status_code == status, (name, method, path, crossed.text)
                    assert me.email not in crossed.text
                    assert me.family_name not in crossed.text
                # The analyst has none of these functions.
                refused = await client.request(
                    method, path, headers=issuer.headers(analyst()), **extra
                )
                assert refused.status_code == 403, (name, method, path)
            assert (await get(f"{record}/history", me.headers)).status_code == 200
            assert (await get(f"{record}/history", mine_ok)).status_code == 200
            assert (await get(consents, mine_ok)).status_code == 200
            own_export = await get(f"{record}/export", me.headers)
            assert own_export.status_code == 200
            assert own_export.json()["member"]["id"] == me.member_id
            assert not leaks(own_export, other)
            # The person's copy is theirs: their embassy's officer cannot take it.
            assert (await get(f"{record}/export", mine_ok)).status_code == 403
            confirmed = await client.post(f"{record}/confirm", headers=me.headers)
            assert confirmed.status_code == 200
            corrected = await client.patch(record, headers=mine_ok, json={"arrival_year": 2005})
            assert corrected.status_code == 200
            assert corrected.json()["id"] == me.member_id

            # --- the delivery log (notifications) -------------------------------------------
            path = "/api/notifications/recipients/{}/deliveries"
            mine = await get(path.format(me.member_id), me.headers)
            assert mine.status_code == 200
            assert mine.json()["items"]
            assert (await get(path.format(other.member_id), me.headers)).status_code == 404
            assert (await get(path.format(me.member_id), mine_ok)).status_code == 200
            assert (await get(path.format(me.member_id), theirs_ko)).status_code == 404
            assert (
                await get(path.format(me.member_id), issuer.headers(analyst()))
            ).status_code == 403

        # --- the analyst: aggregates and non-personal fields only -----------------------------
        analyst_headers = issuer.headers(analyst())
        # No member rows at all (exact counts per country would defeat suppression).
        listed = await get("/api/registry/members", analyst_headers)
        assert listed.status_code == 403
        export = await get("/api/registry/members/export", analyst_headers)
        assert export.status_code == 403
        for person in people.values():
            assert not leaks(listed, person)
            assert not leaks(export, person)
            single = await get(f"/api/registry/members/{person.member_id}", analyst_headers)
            assert single.status_code == 403

        # Statistics come from the read model (registry-worker): wait until it counts everyone.
        async def counted() -> bool:
            found = await get("/api/registry/statistics/members?by=embassy", analyst_headers)
            return bool(found.json()["items"])

        await wait_until(counted, timeout=30, message="statistics read model")
        stats = await get("/api/registry/statistics/members?by=embassy", analyst_headers)
        assert stats.status_code == 200
        # 1 per embassy: suppressed.
        assert all(row["members"] is None for row in stats.json()["items"])

        # --- audit: the officer's reads show in the person's own access log -------------------
        log = (await get(f"/api/registry/members/{ama.member_id}/access-log", ama.headers)).json()
        by_actor: dict[str, set[str]] = {}
        for entry in log["items"]:
            by_actor.setdefault(entry["actor_subject"], set()).add(entry["action"])
        assert by_actor[paris_officer.subject] >= {"read", "list", "search", "export"}
        assert berlin_officer.subject not in by_actor  # never received Ama's record
        assert ama.persona.subject not in by_actor  # her own reads are not "access by others"
