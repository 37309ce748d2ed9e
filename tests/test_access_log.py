"""The person's access log gathers every service's reads (issue 15).

A coordinator's candidate ranking in matching returns a member: matching audits it,
its relay publishes ``matching.audit.recorded`` on the real broker, the registry
worker's ``registry-access-log`` consumer keeps it, and the person sees it in
``GET /members/{id}/access-log`` beside the registry's own entries, newest first, each
naming its service. Both services connect as their runtime database roles.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from matching_testing.experts import profile, updated

from diaspora_devstack.testing import app_url, asyncpg_url, free_port, serve_app, wait_until
from diaspora_identity.testing import LocalIssuer, citizen, coordinator, officer
from matching.bootstrap import bootstrap as matching_bootstrap
from matching.entrypoints.http import build_app as matching_app
from matching.entrypoints.worker import run as matching_worker
from matching.experts.projection import apply_event
from matching.resources import Matching
from matching.settings import MatchingSettings
from registry.bootstrap import bootstrap as registry_bootstrap
from registry.entrypoints.http import build_app as registry_app
from registry.entrypoints.worker import run as registry_worker
from registry.resources import Registry
from registry.settings import RegistrySettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SURGERY = "http://data.europa.eu/esco/skill/508f3b4c-799a-4742-b3ae-75f2ff11153d"
STARTS = date.today() + timedelta(days=60)


def need_body() -> dict[str, Any]:
    return {
        "title": "Enseignant de chirurgie",
        "type": "teaching",
        "institution": "Université de Lomé",
        "institution_kind": "university",
        "description": "Cours de chirurgie et pédagogie médicale pour les internes.",
        "occupations": ["2212"],
        "skills": [{"esco_uri": SURGERY}, {"label": "pédagogie médicale"}],
        "min_isced_level": 7,
        "languages": ["fr"],
        "starts_on": STARTS.isoformat(),
        "ends_on": (STARTS + timedelta(days=30)).isoformat(),
        "region": "TG-M",
        "publish": True,
    }


@pytest.fixture
def matching_service(
    matching_database: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    identity_provider: LocalIssuer,
) -> MatchingSettings:
    return MatchingSettings(
        database_url=asyncpg_url(app_url(matching_database, "matching")),
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        environment="test",
        json_logs=False,
        oidc_issuer=identity_provider.issuer,
        oidc_audience=identity_provider.audience,
        oidc_jwks_min_refresh_seconds=0,
    )


async def test_a_ranking_in_matching_shows_in_the_persons_access_log(
    registry_service: RegistrySettings,
    matching_service: MatchingSettings,
    identity_provider: LocalIssuer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Matching seals personal event fields with keys from the registry's internal key
    # service (crypto-shredding): this test's registry API.
    registry_port = free_port()
    monkeypatch.setenv("MATCHING_EVENT_KEYS_URL", f"http://127.0.0.1:{registry_port}")
    monkeypatch.setenv("MATCHING_EVENT_KEYS_TOKEN_URL", identity_provider.issuer + "/token")
    registry: Registry = registry_bootstrap(registry_service)
    matching: Matching = matching_bootstrap(matching_service)
    stop = asyncio.Event()
    workers = [
        asyncio.create_task(registry_worker(registry_bootstrap(registry_service), stop)),
        asyncio.create_task(matching_worker(matching_bootstrap(matching_service), stop)),
    ]
    try:
        async with (
            serve_app(registry_app(registry), port=registry_port) as registry_url,
            serve_app(matching_app(matching)) as matching_url,
        ):
            person = identity_provider.headers(citizen("ama-access-log"))
            async with httpx.AsyncClient(base_url=registry_url, timeout=20) as api:
                registered = await api.post(
                    "/members",
                    headers=person,
                    json={
                        "given_name": "Ama",
                        "family_name": "Mensah",
                        "date_of_birth": "1984-03-02",
                        "country_of_residence": "FR",
                        "email": "ama.mensah@example.org",
                        "phone": "+33612345678",
                        "preferred_language": "fr",
                    },
                )
                assert registered.status_code == 201, registered.text
                member_id = UUID(registered.json()["id"])
                # An officer's read: the registry's own audit trail.
                seen = await api.get(
                    f"/members/{member_id}", headers=identity_provider.headers(officer("fr-paris"))
                )
                assert seen.status_code == 200, seen.text

                # The person is an expert in matching's read model (what the registry's
                # member events make of a consenting surgeon).
                async with matching.sessions() as session, session.begin():
                    await apply_event(
                        session,
                        updated(
                            member_id,
                            profile(
                                given_name="Ama",
                                occupations=[("2212", "Chirurgienne")],
                                skills=[(SURGERY, "chirurgie"), "pédagogie médicale"],
                                education=[(8, "médecine")],
                            ),
                        ),
                        datetime.now(UTC),
                    )
                async with httpx.AsyncClient(
                    base_url=matching_url,
                    timeout=20,
                    headers=identity_provider.headers(coordinator("coordinator-kafui")),
                ) as as_coordinator:
                    need = (await as_coordinator.post("/needs", json=need_body())).json()
                    ranked = await as_coordinator.get(f"/needs/{need['id']}/candidates")
                assert ranked.status_code == 200, ranked.text
                assert str(member_id) in [i["member_id"] for i in ranked.json()["items"]]

                async def log() -> list[dict[str, Any]]:
                    answer = await api.get(f"/members/{member_id}/access-log", headers=person)
                    assert answer.status_code == 200, answer.text
                    items: list[dict[str, Any]] = answer.json()["items"]
                    return items

                async def ranking_arrived() -> bool:
                    return any(i["service"] == "matching" for i in await log())

                await wait_until(
                    ranking_arrived, timeout=60, message="matching's audit entry in the access log"
                )
                items = await log()
                # Newest first: the ranking, then the officer's read in the registry.
                assert [(i["service"], i["action"]) for i in items] == [
                    ("matching", "rank"),
                    ("registry", "read"),
                ]
                assert items[0]["actor_subject"] == "coordinator-kafui"
                assert items[0]["actor_roles"] == ["ministry_coordinator"]
                occurred = [datetime.fromisoformat(i["occurred_at"]) for i in items]
                assert occurred == sorted(occurred, reverse=True)
                # Paging by time reaches the older entry alone.
                older = await api.get(
                    f"/members/{member_id}/access-log",
                    headers=person,
                    params={"before": items[0]["occurred_at"]},
                )
                assert [i["service"] for i in older.json()["items"]] == ["registry"]
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers, return_exceptions=True), timeout=60)
        await registry.close()
        await matching.close()
