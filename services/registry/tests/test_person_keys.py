"""The registry's key store (crypto-shredding) against the real database: a registration
and a bulk import write sealed outbox rows, each person has a key, erasure destroys it
in its transaction, and ``POST /internal/keys`` serves keys to services only."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select

from diaspora_events.cloudevents import VERSION_ATTRIBUTE
from diaspora_events.contracts import MemberRegisteredV1, contract_for
from diaspora_events.shredding import SEALED, SealBroken, unseal
from diaspora_identity.testing import LocalIssuer, citizen, officer, service_account
from registry.person_keys import person_keys
from registry.resources import Registry
from registry.tables import outbox

from .test_import_api import finished, upload

pytestmark = [pytest.mark.integration, pytest.mark.sealed]

PERSON = {
    "given_name": "Dzidzorli",
    "family_name": "Agbenyega-Kuassi",
    "date_of_birth": "1991-07-30",
    "country_of_residence": "FR",
    "email": "dzidzorli.agbenyega@example.fr",
    "phone": "+33755443322",
}


@pytest.fixture(autouse=True)
def _kek_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_EVENT_KEK_FILE", str(tmp_path / "kek.key"))


async def outbox_rows(registry: Registry) -> list[Any]:
    async with registry.sessions() as session:
        return list((await session.execute(select(outbox))).all())


def opened(row: Any, key: bytes) -> dict[str, Any]:
    headers = row.headers
    version = int(headers.get(f"ce_{VERSION_ATTRIBUTE}", "1"))
    return unseal(
        json.loads(row.value),
        event_id=headers["ce_id"],
        event_type=headers["ce_type"],
        version=version,
        data_key=key,
    )


async def test_registration_is_sealed_erasure_destroys_the_key_and_services_get_keys(
    registry: Registry, registry_url: str, identity_provider: LocalIssuer
) -> None:
    assert registry.keys is not None
    me = identity_provider.headers(citizen())
    async with httpx.AsyncClient(base_url=registry_url, timeout=30) as http:
        created = await http.post("/members", json=PERSON, headers=me)
        assert created.status_code == 201, created.text
        member_id = UUID(created.json()["id"])

        rows = [r for r in await outbox_rows(registry) if r.key == str(member_id)]
        assert rows, "the registration's event is in the outbox"
        for row in rows:
            for value in ("Dzidzorli", "Agbenyega", "1991-07-30", "33755443322"):
                assert value.encode() not in row.value
        key = (await registry.keys.data_keys([member_id]))[member_id]
        assert key is not None
        registered = next(r for r in rows if r.event_type == MemberRegisteredV1.event_type)
        event = MemberRegisteredV1.model_validate(opened(registered, key))
        assert event.email == PERSON["email"]

        # Services only; other roles are refused; the answer is per subject.
        body = {"subject_ids": [str(member_id)]}
        refused = await http.post("/internal/keys", json=body, headers=me)
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
        staff = identity_provider.headers(officer("fr-paris"))
        assert (await http.post("/internal/keys", json=body, headers=staff)).status_code == 403
        assert (await http.post("/internal/keys", json=body)).status_code == 401
        service = identity_provider.headers(service_account("notifications"))
        served = await http.post("/internal/keys", json=body, headers=service)
        assert served.status_code == 200, served.text
        (item,) = served.json()["keys"]
        assert item["status"] == "active"
        assert base64.b64decode(item["dek"]) == key
        bad = await http.post("/internal/keys", json={"subject_ids": ["nope"]}, headers=service)
        assert bad.status_code == 422

        # An officer's read: its audit event (sealed for the person) stays in the outbox.
        read = await http.get(f"/members/{member_id}", headers=staff)
        assert read.status_code == 200, read.text
        erased = await http.delete(f"/members/{member_id}", headers=me)
        assert erased.status_code == 204, erased.text

        async with registry.sessions() as session:
            tomb = (
                await session.execute(
                    select(person_keys).where(person_keys.c.subject_id == member_id)
                )
            ).one()
        assert tomb.wrapped_dek is None
        assert tomb.kek_id is None
        assert tomb.destroyed_at is not None
        assert (await registry.keys.data_keys([member_id]))[member_id] is None
        gone = await http.post("/internal/keys", json=body, headers=service)
        assert gone.json()["keys"] == [{"subject_id": str(member_id), "status": "gone"}]

    # Whatever the outbox still holds about the person (the erasure's own audit event,
    # sealed for them) opens with no key the store still has.
    async with registry.sessions() as session:
        wrapped = (
            await session.execute(
                select(person_keys.c.wrapped_dek).where(person_keys.c.wrapped_dek.is_not(None))
            )
        ).scalars()
        live = await registry.keys.kek.unwrap([bytes(w) for w in wrapped])
    assert key not in live
    about_them = 0
    for row in await outbox_rows(registry):
        data = json.loads(row.value)
        if SEALED in data and data[SEALED]["sub"] == str(member_id):
            about_them += 1
            for candidate in live:
                with pytest.raises(SealBroken):
                    opened(row, candidate)
    assert about_them >= 1


async def test_bulk_import_seals_every_row_with_each_persons_key(
    registry: Registry, registry_url: str, identity_provider: LocalIssuer
) -> None:
    assert registry.keys is not None
    names = ["Adjoa", "Kodjovi", "Mawuena", "Selom", "Edem", "Yawa", "Komi", "Akpene"]
    emails = {f"{n.lower()}.sealed{i}@example.org" for i, n in enumerate(names)}
    lines = ["family_name,given_name,date_of_birth,country,phone,email,sex"] + [
        f"Tsogbe{chr(97 + i)}{chr(98 + i)},{n},198{i}-0{i + 1}-1{i},FR,+3361234{i:04d},"
        f"{n.lower()}.sealed{i}@example.org,female"
        for i, n in enumerate(names)
    ]
    content = ("\r\n".join(lines) + "\r\n").encode()
    async with httpx.AsyncClient(
        base_url=registry_url, timeout=60, headers=identity_provider.headers(officer("fr-paris"))
    ) as http:
        started = await upload(http, content, "liste.csv")
        assert started.status_code == 202, started.text
        job = await finished(http, started.json()["id"])
        errors = (await http.get(f"/imports/{job['id']}/errors.csv")).text
    assert job["accepted"] == 8, (job, errors)
    written = [
        r
        for r in await outbox_rows(registry)
        if r.event_type in ("registry.member.registered", "registry.audit.recorded")
    ]
    assert len(written) >= job["accepted"]
    subjects = {UUID(json.loads(r.value)[SEALED]["sub"]) for r in written}
    keys = await registry.keys.data_keys(subjects)
    registered = 0
    for row in written:
        assert not any(e.encode() in row.value for e in emails)
        data = json.loads(row.value)
        key = keys[UUID(data[SEALED]["sub"])]
        assert key is not None
        contract = contract_for(row.event_type, 1)
        contract.model_validate(opened(row, key))  # the model's JSON, back whole
        registered += row.event_type == "registry.member.registered"
    assert registered == job["accepted"]
