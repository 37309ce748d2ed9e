"""Search for officers and coordinators against the real database and broker: members
registered over HTTP, their events relayed to Kafka, the read-model consumer indexing
them; accents, typos and word order; filters; the policy's scope and audit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from diaspora_devstack.testing import asyncpg_url, serve_app, wait_until
from diaspora_events.outbox import OutboxRelay
from diaspora_identity.testing import LocalIssuer, analyst, citizen, coordinator, officer
from registry.bootstrap import bootstrap
from registry.entrypoints.http import build_app
from registry.entrypoints.worker import run
from registry.resources import Registry
from registry.settings import RegistrySettings
from registry.statistics.tables import member_search, name_words
from registry.tables import audit_log, outbox

pytestmark = pytest.mark.integration


@pytest.fixture
async def live_registry(
    registry_database: str, kafka_bootstrap: str, topic_prefix: str, identity_provider: LocalIssuer
) -> AsyncIterator[Registry]:
    """The registry with its relay and worker running (outbox -> Kafka -> read models)."""
    service = bootstrap(
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
    relay = OutboxRelay(
        engine=service.engine,
        table=outbox,
        bootstrap_servers=kafka_bootstrap,
        client_id="registry-relay-test",
        topic_prefix=topic_prefix,
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(run(service, stop)), asyncio.create_task(relay.run(stop))]
    yield service
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    await service.close()


@pytest.fixture
async def api(live_registry: Registry) -> AsyncIterator[str]:
    async with serve_app(build_app(live_registry)) as base_url:
        yield base_url


PEOPLE: list[dict[str, Any]] = [
    {
        "given_name": "Kossi",
        "family_name": "Agbéko",
        "country_of_residence": "FR",
        "city": "Lyon",
        "occupations": [{"isco_code": "2211"}],
        "skills": [{"label": "Chirurgie pédiatrique"}],
        "education": [{"isced_level": 7}],
        "languages": ["fr", "ee"],
        "availability": {"mission_types": ["medical", "teaching"]},
    },
    {
        "given_name": "Kossiwa",
        "family_name": "Mensah",
        "country_of_residence": "FR",
        "city": "Paris",
        "occupations": [{"isco_code": "2330"}],
        "education": [{"isced_level": 6}],
        "languages": ["fr"],
    },
    {
        "given_name": "Komi",
        "family_name": "Agbekou",
        "country_of_residence": "FR",
        "city": "Paris",
        "occupations": [{"isco_code": "7411"}],
        "languages": ["fr", "en"],
    },
    {
        "given_name": "Kossi",
        "family_name": "Lawson",
        "country_of_residence": "DE",
        "city": "Berlin",
        "occupations": [{"isco_code": "2211"}],
        "education": [{"isced_level": 8}],
        "languages": ["de", "fr"],
        "availability": {"mission_types": ["medical"]},
    },
]


async def _register(api: str, issuer: LocalIssuer) -> dict[str, str]:
    ids = {}
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        for i, person in enumerate(PEOPLE):
            body = {
                "date_of_birth": "1985-06-01",
                "email": f"person{i}@example.org",
                "phone": "+33612345678"
                if person["country_of_residence"] == "FR"
                else "+4915112345678",
                **person,
            }
            response = await client.post(
                "/members", json=body, headers=issuer.headers(citizen(f"search-{i}"))
            )
            assert response.status_code == 201, response.text
            ids[f"{person['given_name']} {person['family_name']}"] = response.json()["id"]
    return ids


async def _indexed(registry: Registry, n: int) -> bool:
    async with registry.sessions() as session:
        found = await session.execute(select(func.count()).select_from(member_search))
        return int(found.scalar_one()) >= n


async def _names(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get("/members/search", params=params)
    assert response.status_code == 200, response.text
    return [f"{m['given_name']} {m['family_name']}" for m in response.json()["items"]]


async def test_name_search_ignores_accents_order_and_typos_and_filters_by_profile(
    live_registry: Registry, api: str, identity_provider: LocalIssuer
) -> None:
    await _register(api, identity_provider)
    await wait_until(lambda: _indexed(live_registry, len(PEOPLE)), timeout=60, message="indexed")
    headers = identity_provider.headers(coordinator())
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=10) as client:
        # Accents, case and word order ignored; one letter missing (Kosi).
        found = await _names(client, q="agbeko kosi")
        assert found[0] == "Kossi Agbéko"
        assert await _names(client, q="Kossi Agbéko") == ["Kossi Agbéko"]
        # A typo in the family name (one letter changed), and a prefix.
        assert (await _names(client, q="kossi agbeco"))[0] == "Kossi Agbéko"
        assert set(await _names(client, q="agbe")) == {"Kossi Agbéko", "Komi Agbekou"}
        assert await _names(client, q="zzyzx qwerty") == []
        # Filters: occupation code and its group, skill, education, language, city, mission.
        assert set(await _names(client, occupation="2211")) == {"Kossi Agbéko", "Kossi Lawson"}
        assert set(await _names(client, occupation="22")) == {"Kossi Agbéko", "Kossi Lawson"}
        assert set(await _names(client, occupation="2")) == {
            "Kossi Agbéko",
            "Kossiwa Mensah",
            "Kossi Lawson",
        }
        assert await _names(client, skill="chirurgie pédiatrique") == ["Kossi Agbéko"]
        assert set(await _names(client, education_min=7)) == {"Kossi Agbéko", "Kossi Lawson"}
        assert set(await _names(client, language="ee")) == {"Kossi Agbéko"}
        assert set(await _names(client, language="en")) == {"Komi Agbekou"}
        assert set(await _names(client, city="Paris", country="FR")) == {
            "Kossiwa Mensah",
            "Komi Agbekou",
        }
        assert set(await _names(client, mission="medical")) == {"Kossi Agbéko", "Kossi Lawson"}
        assert await _names(client, q="kossi", country="DE") == ["Kossi Lawson"]
        assert set(await _names(client, q="kossi", occupation="22", mission="medical")) == {
            "Kossi Agbéko",
            "Kossi Lawson",
        }
        # Pagination: one per page, then the next.
        first = await client.get("/members/search", params={"occupation": "2", "limit": 2})
        page = first.json()
        assert len(page["items"]) == 2
        assert page["next_offset"] == 2
        rest = await client.get("/members/search", params={"occupation": "2", "offset": 2})
        assert len(rest.json()["items"]) == 1
        assert rest.json()["next_offset"] is None
        # No criterion, an invalid one: problem details.
        empty = await client.get("/members/search")
        assert empty.status_code == 422
        assert empty.headers["content-type"].startswith("application/problem+json")
        assert (await client.get("/members/search", params={"occupation": "2x"})).status_code == 422
        for nothing in ("%", "_%"):
            response = await client.get("/members/search", params={"q": nothing})
            assert response.status_code == 422


async def test_search_is_scoped_and_audited_like_every_read(
    live_registry: Registry, api: str, identity_provider: LocalIssuer
) -> None:
    ids = await _register(api, identity_provider)
    await wait_until(lambda: _indexed(live_registry, len(PEOPLE)), timeout=60, message="indexed")
    berlin = officer("de-berlin")
    paris = officer("fr-paris")
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        # The Berlin officer finds nobody living in France, whatever the query.
        found = await client.get(
            "/members/search",
            params={"q": "kossi agbeko"},
            headers=identity_provider.headers(berlin),
        )
        assert found.json()["items"] == []
        mine = await client.get(
            "/members/search", params={"q": "kossi"}, headers=identity_provider.headers(berlin)
        )
        assert [m["family_name"] for m in mine.json()["items"]] == ["Lawson"]
        in_paris = await client.get(
            "/members/search", params={"q": "kossi"}, headers=identity_provider.headers(paris)
        )
        assert {m["family_name"] for m in in_paris.json()["items"]} == {"Agbéko", "Mensah"}
        # Analysts may not search by name (the policy has no grant for them).
        refused = await client.get(
            "/members/search", params={"q": "kossi"}, headers=identity_provider.headers(analyst())
        )
        assert refused.status_code == 403
        nobody = await client.get("/members/search", params={"q": "kossi"})
        assert nobody.status_code == 401
    async with live_registry.sessions() as session:
        audited = (
            await session.execute(
                select(audit_log.c.record_id, audit_log.c.actor_subject).where(
                    audit_log.c.action == "search"
                )
            )
        ).all()
    by_actor: dict[str, set[str]] = {}
    for record_id, actor in audited:
        by_actor.setdefault(actor, set()).add(str(record_id))
    assert by_actor[paris.subject] == {ids["Kossi Agbéko"], ids["Kossiwa Mensah"]}
    assert by_actor[berlin.subject] == {ids["Kossi Lawson"]}


async def test_erasure_leaves_no_name_in_the_search_read_models(
    live_registry: Registry, api: str, identity_provider: LocalIssuer
) -> None:
    from datetime import UTC, datetime
    from uuid import UUID

    from diaspora_events.contracts.registry import MemberErasedV1

    from .read_models import publish

    ids = await _register(api, identity_provider)
    await wait_until(lambda: _indexed(live_registry, len(PEOPLE)), timeout=60, message="indexed")
    # The event the registry publishes after erasure (its own erasure is tested with it).
    await publish(
        live_registry.settings.kafka_bootstrap,
        live_registry.settings.topic_prefix + "registry.members",
        [MemberErasedV1(member_id=UUID(ids["Kossiwa Mensah"]), erased_at=datetime.now(UTC))],
    )

    async def gone() -> bool:
        async with live_registry.sessions() as session:
            words = {r.word for r in await session.execute(select(name_words.c.word))}
        return "mensah" not in words

    await wait_until(gone, timeout=30, message="name words of the erased person removed")
    async with live_registry.sessions() as session:
        words = {r.word for r in await session.execute(select(name_words.c.word))}
        rows = (await session.execute(select(member_search.c.name_key))).all()
    assert "kossiwa" not in words
    assert "kossi" in words  # still used by others
    assert all("mensah" not in r.name_key for r in rows)
