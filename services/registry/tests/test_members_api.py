"""POST /members and GET /members/{id} against the real database (as a citizen registering
themselves; access control itself is in test_access_control.py)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from registry.members.tables import members
from registry.resources import Registry
from registry.tables import outbox

pytestmark = pytest.mark.integration


def person(**overrides: Any) -> dict[str, Any]:
    body = {
        "given_name": "Akossiwa",
        "family_name": "Mensah",
        "date_of_birth": "1990-04-27",
        "country_of_residence": "fr",
        "email": "akossiwa.mensah@example.org",
        "phone": "+33 6 12 34 56 78",
        "preferred_language": "fr",
    }
    body.update(overrides)
    return body


async def counts(registry: Registry) -> tuple[int, int]:
    async with registry.sessions() as session:
        m = (await session.execute(select(func.count()).select_from(members))).scalar_one()
        o = (await session.execute(select(func.count()).select_from(outbox))).scalar_one()
    return int(m), int(o)


async def test_registration_stores_the_member_and_its_event_together(
    registry_client: httpx.AsyncClient, registry: Registry
) -> None:
    response = await registry_client.post("/members", json=person())
    assert response.status_code == 201, response.text
    member = response.json()
    assert member["country_of_residence"] == "FR"
    assert member["phone"] == "+33612345678"
    assert response.headers["location"] == f"/members/{member['id']}"

    fetched = await registry_client.get(f"/members/{member['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == member
    assert member["embassy_id"] == "fr-paris"

    async with registry.sessions() as session:
        row = (await session.execute(select(outbox))).one()
    assert row.event_type == "registry.member.registered"
    assert row.key == member["id"]
    assert row.headers["ce_subject"] == member["id"]
    assert row.headers["ce_dataversion"] == "1"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"phone": "0612345678"}, "phone"),
        ({"phone": "+331"}, "phone"),
        ({"country_of_residence": "XX"}, "country_of_residence"),
        ({"country_of_residence": "FRA"}, "country_of_residence"),
        ({"email": "not-an-email"}, "email"),
        ({"date_of_birth": "2999-01-01"}, "date_of_birth"),
        ({"date_of_birth": "27/04/1990"}, "date_of_birth"),
        ({"given_name": ""}, "given_name"),
        ({"preferred_language": "de"}, "preferred_language"),
        ({"unexpected": "field"}, "unexpected"),
    ],
)
async def test_invalid_registrations_get_problem_details_and_store_nothing(
    registry_client: httpx.AsyncClient, registry: Registry, overrides: dict[str, Any], field: str
) -> None:
    response = await registry_client.post("/members", json=person(**overrides))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert problem["title"]
    assert field in [e["field"] for e in problem["errors"]]
    assert await counts(registry) == (0, 0)


HEADER_INJECTION = "Ama\r\nReply-To: x@evil.example\r\nX-Probe: 1"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"given_name": HEADER_INJECTION}, "given_name"),
        ({"family_name": "Mensah\x00"}, "family_name"),
        ({"family_name": "Men\u2028sah"}, "family_name"),
        ({"city": "Lyon\nX-Probe: 1"}, "city"),
        ({"occupations": [{"isco_code": "2211", "title": "M\u00e9de\r\ncin"}]}, "title"),
        ({"skills": [{"label": "soins\x1b[31m"}]}, "label"),
        (
            {"postal_address": {"lines": ["12 rue\rdes Lilas"], "city": "Lyon", "country": "FR"}},
            "lines",
        ),
    ],
)
async def test_control_characters_in_free_text_are_refused_and_store_nothing(
    registry_client: httpx.AsyncClient, registry: Registry, overrides: dict[str, Any], field: str
) -> None:
    """CR, LF, NUL, escape and the Unicode separators would forge mail headers and lines."""
    response = await registry_client.post("/members", json=person(**overrides))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert any(
        field in error["field"] and "control characters" in error["message"]
        for error in problem["errors"]
    ), problem
    assert await counts(registry) == (0, 0)


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[]", b"", "\ud800".encode("utf-8", "surrogatepass"), b'{"given_name": 3}'],
)
async def test_malformed_bodies_are_4xx_never_500(
    registry_client: httpx.AsyncClient, raw: bytes
) -> None:
    response = await registry_client.post(
        "/members", content=raw, headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/problem+json"


async def test_unknown_and_malformed_ids_are_404_and_422(
    registry_client: httpx.AsyncClient,
) -> None:
    missing = await registry_client.get("/members/01a2205f-7f73-75bf-bdda-60145c9948cd")
    assert missing.status_code == 404
    assert missing.json()["title"] == "Member not found"
    malformed = await registry_client.get("/members/42")
    assert malformed.status_code == 422


async def test_idempotency_key_replays_the_first_result(
    registry_client: httpx.AsyncClient, registry: Registry
) -> None:
    first = await registry_client.post("/members", json=person(), headers={"Idempotency-Key": "k1"})
    again = await registry_client.post("/members", json=person(), headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    other = await registry_client.post(
        "/members", json=person(given_name="Kodjo"), headers={"Idempotency-Key": "k1"}
    )
    assert other.status_code == 422
    assert await counts(registry) == (1, 1)


async def test_the_first_release_body_still_registers_with_the_profile_defaults(
    registry_client: httpx.AsyncClient, registry: Registry
) -> None:
    response = await registry_client.post("/members", json=person())
    assert response.status_code == 201, response.text
    member = response.json()
    assert response.headers["etag"] == '"1"'
    assert member["sex"] == "unspecified"
    assert member["languages"] == []
    assert member["occupations"] == []
    assert member["documents"] == []
    assert member["consents"] == []
    assert member["version"] == 1
    assert member["registration_consent"]["method"] == "self_service"
    async with registry.sessions() as session:
        row = (await session.execute(select(outbox))).one()
    event = json.loads(row.value)
    # Readers of the first release's flat fields are unaffected; the snapshot comes along.
    assert event["given_name"] == "Akossiwa"
    assert event["country_of_residence"] == "FR"
    assert event["profile"]["given_name"] == "Akossiwa"
    assert event["profile"]["embassy_id"] == "fr-paris"
    assert event["profile"]["sex"] == "unspecified"
