"""Registration writes the member and its event in one transaction (fast tier): the
registry's app in this process, on a rolled-back database, no Kafka.

An officer's (assisted) registration: its transaction is the one the test's session
factory serves. A citizen's own registration takes another path when no duplicate is
likely, one statement on a connection of its own in autocommit (members.one_statement),
which a rolled-back transaction cannot hold: that path is tested against the real
database (test_members_api.py, test_registration_paths.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from diaspora_devstack.fastdb import FastDatabases, RolledBack
from diaspora_devstack.testing import app_in_process, app_url, asyncpg_url, identity_in_process
from diaspora_identity.testing import LocalIssuer, citizen, officer
from registry.bootstrap import bootstrap
from registry.entrypoints.http import build_app
from registry.members.tables import members
from registry.resources import Registry
from registry.settings import RegistrySettings
from registry.tables import outbox

PERSON = {
    "given_name": "Akossiwa",
    "family_name": "Mensah",
    "date_of_birth": "1990-04-27",
    "country_of_residence": "fr",
    "email": "akossiwa.mensah@example.org",
    "phone": "+33 6 12 34 56 78",
    "preferred_language": "fr",
}


@pytest.fixture(scope="module")
async def in_process(
    fastdb: FastDatabases,
) -> AsyncIterator[tuple[Registry, httpx.AsyncClient, LocalIssuer]]:
    """The registry's app, started once for this module (building and starting it takes
    seconds); each test hands it its own rolled-back sessions (:func:`registry_client`)."""
    issuer = LocalIssuer("http://issuer.test/dev-idp")
    settings = RegistrySettings(
        database_url=asyncpg_url(app_url(await fastdb.url("registry"), "registry")),
        kafka_bootstrap="127.0.0.1:9",  # never contacted: the relay publishes, not the API
        environment="test",
        json_logs=False,
        oidc_issuer=issuer.issuer,
    )
    with pytest.MonkeyPatch.context() as env:
        # The import runner polls in the background: not part of what is tested here.
        env.setenv("REGISTRY_IMPORT_RUNNER", "false")
        env.setenv("REGISTRY_EVENT_ENCRYPTION", "false")
        built = bootstrap(settings)
        registry = replace(built, identity=identity_in_process(issuer, settings))
        try:
            async with app_in_process(build_app(registry)) as client:
                yield registry, client, issuer
        finally:
            await registry.close()
            await built.identity.aclose()


@pytest.fixture
def registry_client(
    in_process: tuple[Registry, httpx.AsyncClient, LocalIssuer], registry_tx: RolledBack
) -> Iterator[tuple[httpx.AsyncClient, LocalIssuer]]:
    """The app, its requests served on this test's rolled-back transaction."""
    registry, client, issuer = in_process
    started_with = registry.sessions
    registry.sessions = registry_tx.sessions
    try:
        yield client, issuer
    finally:
        registry.sessions = started_with


async def table_counts(tx: RolledBack) -> tuple[int, int]:
    async with tx.sessions() as session:
        m = (await session.execute(select(func.count()).select_from(members))).scalar_one()
        o = (await session.execute(select(func.count()).select_from(outbox))).scalar_one()
    return int(m), int(o)


async def test_a_registration_writes_the_member_and_its_event(
    registry_client: tuple[httpx.AsyncClient, LocalIssuer], registry_tx: RolledBack
) -> None:
    client, issuer = registry_client
    body = {**PERSON, "consent_recorded": {"method": "signed_form", "reference": "form 12"}}
    answer = await client.post(
        "/members", json=body, headers=issuer.headers(officer("fr-paris", subject="agent-7"))
    )
    assert answer.status_code == 201, answer.text
    member: dict[str, Any] = answer.json()
    assert member["embassy_id"] == "fr-paris"

    async with registry_tx.sessions() as session:
        stored = (await session.execute(select(members))).mappings().one()
        events = (await session.execute(select(outbox).order_by(outbox.c.id))).mappings().all()
    # The registration's event, and (assisted: staff read and wrote the record) its audit.
    assert [e["event_type"] for e in events] == [
        "registry.member.registered",
        "registry.audit.recorded",
    ]
    event = events[0]
    assert str(stored["id"]) == member["id"]
    assert stored["owner_subject"] is None  # filed for the person by an officer
    assert stored["registered_by"] == "agent-7"
    assert stored["country_of_residence"] == "FR"
    assert stored["phone"] == "+33612345678"
    assert event["event_type"] == "registry.member.registered"
    assert event["key"] == member["id"]
    assert event["published_at"] is None  # the relay's to publish
    assert event["headers"]["ce_subject"] == member["id"]
    value = json.loads(event["value"])
    assert value["member_id"] == member["id"]
    assert value["profile"]["email"] == "akossiwa.mensah@example.org"


async def test_a_refused_registration_writes_nothing(
    registry_client: tuple[httpx.AsyncClient, LocalIssuer], registry_tx: RolledBack
) -> None:
    client, issuer = registry_client
    headers = issuer.headers(citizen("someone"))
    refused = await client.post("/members", json={**PERSON, "phone": "0612"}, headers=headers)
    assert refused.status_code == 422
    anonymous = await client.post("/members", json=PERSON)
    assert anonymous.status_code == 401
    outside = await client.post(
        "/members",
        json={**PERSON, "consent_recorded": {"method": "signed_form"}},
        headers=issuer.headers(officer("de-berlin")),
    )
    assert outside.status_code in (403, 404), outside.text
    assert await table_counts(registry_tx) == (0, 0)
