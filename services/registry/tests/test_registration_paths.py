"""A self-registration is written by one statement unless it needs the transaction (a
likely duplicate, document numbers, an officer filing it): both write the same rows."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from diaspora_identity.testing import LocalIssuer, citizen
from registry.duplicates.tables import duplicate_cases, member_match_keys
from registry.members.tables import member_changes, member_consents, members
from registry.resources import Registry
from registry.tables import outbox

pytestmark = pytest.mark.integration

BODY: dict[str, Any] = {
    "given_name": "Kɔku",
    "family_name": "Agbéko",
    "date_of_birth": "1984-03-02",
    "country_of_residence": "FR",
    "email": "koku.agbeko@example.org",
    "phone": "+33 6 12 34 56 01",
    "preferred_language": "fr",
    "sex": "male",
    "city": "Lyon",
    "languages": ["ee", "fr"],
    "occupations": [{"isco_code": "2211", "title": "Médecin"}],
    "skills": [{"label": "Chirurgie"}],
    "education": [{"isced_level": 7, "field": "Médecine", "year": 2010}],
    "availability": {"mission_types": ["medical"], "remote": True},
    "postal_address": {
        "lines": ["1 rue de la Paix"],
        "postal_code": "69001",
        "city": "Lyon",
        "country": "FR",
    },
    "consents": {"statistics": True, "newsletters": False},
}
# What differs between two registrations of the same body by two people.
OWN = {"id", "email", "phone", "registered_at", "updated_at", "last_confirmed_at", "member_id"}


async def _rows(registry: Registry, member_id: str) -> dict[str, Any]:
    async with registry.sessions() as session:

        def one(table: Any, column: Any) -> Any:
            return session.execute(select(table).where(column == member_id))

        member = (await one(members, members.c.id)).mappings().one()
        history = (await one(member_changes, member_changes.c.member_id)).mappings().all()
        consents = (await one(member_consents, member_consents.c.member_id)).mappings().all()
        keys = (await one(member_match_keys, member_match_keys.c.member_id)).mappings().all()
        events = (
            (
                await session.execute(
                    select(outbox)
                    .where(outbox.c.key == member_id)
                    .where(outbox.c.event_type == "registry.member.registered")
                )
            )
            .mappings()
            .all()
        )
    return {
        "member": member,
        "history": history,
        "consents": consents,
        "keys": keys,
        "events": events,
    }


def _without(row: Any, *names: str) -> dict[str, Any]:
    drop = OWN | set(names)
    kept = {k: v for k, v in dict(row).items() if k not in drop}
    if isinstance(kept.get("consents"), list):  # given at each one's own registration time
        kept["consents"] = [{k: v for k, v in c.items() if k != "at"} for c in kept["consents"]]
    return kept


async def test_self_registration_in_one_statement_writes_what_the_transaction_writes(
    registry: Registry, registry_url: str, identity_provider: LocalIssuer
) -> None:
    async def register(subject: str, **changes: Any) -> str:
        async with httpx.AsyncClient(
            base_url=registry_url, headers=identity_provider.headers(citizen(subject)), timeout=30
        ) as http:
            response = await http.post("/members", json={**BODY, **changes})
            assert response.status_code == 201, response.text
            fetched = await http.get(f"/members/{response.json()['id']}")
            assert fetched.json() == response.json()  # what was answered is what is stored
            member_id: str = response.json()["id"]
            return member_id

    # Nobody like them yet: one statement. The same person again from another account,
    # other contacts: a likely duplicate, so the transaction, which opens the case.
    first = await register("person-one")
    second = await register("person-two", email="k.agbeko@example.com", phone="+33612345699")
    async with registry.sessions() as session:
        cases = (await session.execute(select(duplicate_cases))).mappings().all()
    assert [(str(c["member_id"]), str(c["match_id"])) for c in cases] == [(second, first)]

    one, other = await _rows(registry, first), await _rows(registry, second)
    assert _without(one["member"], "owner_subject", "request_digest") == _without(
        other["member"], "owner_subject", "request_digest"
    )
    assert one["member"]["owner_subject"] == "person-one"

    [line], [other_line] = one["history"], other["history"]
    assert line["action"] == "registered"
    assert line["version"] == 1
    assert line["actor_role"] == "citizen"
    assert line["actor_subject"] is None
    assert line["changed_at"] == one["member"]["registered_at"]
    assert line["old_values"] == {}
    assert "consents" in line["fields"]
    assert "city" in line["fields"]
    assert line["request_id"]
    assert other_line["request_id"]
    assert _without(line, "id", "changed_at", "new_values", "request_id") == _without(
        other_line, "id", "changed_at", "new_values", "request_id"
    )
    assert _without(line["new_values"]) == _without(other_line["new_values"])

    assert [
        (c["purpose"], c["granted"], c["method"], c["actor_role"]) for c in one["consents"]
    ] == [
        ("newsletters", False, "self_service", "citizen"),
        ("statistics", True, "self_service", "citizen"),
    ]
    assert [_without(c, "id", "at") for c in one["consents"]] == [
        _without(c, "id", "at") for c in other["consents"]
    ]
    assert all(c["at"] == one["member"]["registered_at"] for c in one["consents"])

    [key], [other_key] = one["keys"], other["keys"]
    assert key["name_key"] == "agbeko koku" == other_key["name_key"]
    assert key["email"] == "koku.agbeko@example.org"

    [event], [other_event] = one["events"], other["events"]
    data, other_data = json.loads(event["value"]), json.loads(other_event["value"])
    assert data["member_id"] == first
    assert data["profile"]["consents"][1]["purpose"] == "statistics"
    assert _without(data["profile"]) == _without(other_data["profile"])
    assert set(event["headers"]) == set(other_event["headers"])
    assert event["headers"]["ce_subject"] == first

    # The same account again: refused by the unique owner, answered 409 as before.
    async with httpx.AsyncClient(
        base_url=registry_url, headers=identity_provider.headers(citizen("person-one")), timeout=30
    ) as http:
        again = await http.post("/members", json={**BODY, "email": "other@example.org"})
        assert again.status_code == 409, again.text
        assert again.json()["member_id"] == first
        # ... also when the body is otherwise invalid further down (an unknown city id).
        bad_city = await http.post("/members", json={**BODY, "city": {"geonames_id": 1}})
        assert bad_city.status_code == 409, bad_city.text
    async with registry.sessions() as session:
        total = (await session.execute(text("SELECT count(*) FROM members"))).scalar_one()
    assert total == 2
