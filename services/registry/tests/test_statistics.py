"""The statistics read model from the registry's own events (real database and broker):
counts, idempotency, erasure and merge, suppression, GeoJSON and CSV, scope."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from uuid_utils.compat import uuid7

from diaspora_devstack.testing import asyncpg_url, serve_app, wait_until
from diaspora_events.contracts.registry import (
    City,
    Consent,
    Education,
    MemberErasedV1,
    MemberMergedV1,
    MemberUpdatedV1,
    Occupation,
    Skill,
)
from diaspora_events.topics import REGISTRY_MEMBERS
from diaspora_identity.testing import LocalIssuer, admin, analyst, coordinator, officer
from registry.bootstrap import bootstrap
from registry.entrypoints.http import build_app
from registry.entrypoints.worker import run
from registry.resources import Registry
from registry.settings import RegistrySettings
from registry.statistics.projection import counts_match_recount
from registry.statistics.tables import stats_cities, stats_labels, stats_members

from .read_models import handled, profile, publish, registered

pytestmark = pytest.mark.integration

PARIS = City(geonames_id=2988507, name="Paris", latitude=48.85341, longitude=2.3488)
LYON = City(name="Lyon")  # resolved from the gazetteer
BERLIN = City(name="Berlin")
COTONOU = City(name="Cotonou")
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
async def stats_registry(
    registry_database: str, kafka_bootstrap: str, topic_prefix: str, identity_provider: LocalIssuer
) -> AsyncIterator[Registry]:
    service = bootstrap(
        RegistrySettings(
            database_url=asyncpg_url(registry_database),
            kafka_bootstrap=kafka_bootstrap,
            topic_prefix=topic_prefix,
            environment="test",
            json_logs=False,
            oidc_issuer=identity_provider.issuer,
            oidc_jwks_min_refresh_seconds=0,
            stale_check_interval_seconds=3600,
        )
    )
    stop = asyncio.Event()
    worker = asyncio.create_task(run(service, stop))
    yield service
    stop.set()
    await asyncio.wait_for(worker, timeout=30)
    await service.close()


@pytest.fixture
async def api(stats_registry: Registry) -> AsyncIterator[str]:
    async with serve_app(build_app(stats_registry)) as base_url:
        yield base_url


def _people() -> list[Any]:
    """18 people: 11 in France (9 Paris, 2 Lyon), 4 in Germany (Berlin), 3 in Benin."""
    people = []
    for i in range(9):
        people.append(
            profile(
                given_name=f"Ama{i}",
                sex="female" if i % 3 else "male",
                city=PARIS,
                date_of_birth=date(1980 + i, 1, 1),
                occupations=[Occupation(isco_code="2211")] if i < 6 else [],
                education=[Education(isced_level=7)] if i < 5 else [],
                skills=[Skill(label="Chirurgie pédiatrique")] if i < 6 else [],
            )
        )
    for i in range(2):
        people.append(profile(given_name=f"Lyon{i}", sex="female", city=LYON))
    for i in range(4):
        people.append(
            profile(
                given_name=f"Kofi{i}",
                country_of_residence="DE",
                embassy_id="de-berlin",
                city=BERLIN,
                sex="male",
                occupations=[Occupation(isco_code="2512")],
            )
        )
    for i in range(3):
        people.append(
            profile(
                given_name=f"Edem{i}",
                country_of_residence="BJ",
                embassy_id="bj-cotonou",
                city=COTONOU,
                sex="female",
            )
        )
    return people


async def _load(registry: Registry, bootstrap_servers: str, topic: str) -> dict[str, Any]:
    """Register the 18 people, then: one moves from Berlin to Paris, one refuses
    statistics, one is erased (with a skill typed only by them), one merged into another.
    Every event is delivered twice."""
    people = _people()
    events: list[Any] = [registered(p, at=T0 + timedelta(minutes=i)) for i, p in enumerate(people)]
    ids = [e.member_id for e in events]
    mover, refuser, erased, merged = ids[11], ids[12], ids[14], ids[10]
    erased_event = events[14]
    events[14] = registered(
        erased_event.profile.model_copy(  # type: ignore[union-attr]
            update={"skills": [Skill(label="Sculpture sur ébène Zyx")], "city": City(name="Kiel")}
        ),
        member_id=erased,
        at=erased_event.registered_at,
    )
    later = T0 + timedelta(days=1)
    events += [
        MemberUpdatedV1(
            member_id=mover,
            updated_at=later,
            changed_fields=["country_of_residence", "city"],
            profile=people[11].model_copy(
                update={"country_of_residence": "FR", "embassy_id": "fr-paris", "city": PARIS}
            ),
        ),
        MemberUpdatedV1(
            member_id=refuser,
            updated_at=later,
            changed_fields=["consents"],
            profile=people[12].model_copy(
                update={"consents": [Consent(purpose="statistics", granted=False, at=later)]}
            ),
        ),
        MemberErasedV1(member_id=erased, erased_at=later),
        MemberMergedV1(member_id=merged, survivor_id=ids[9], merged_at=later, case_id=uuid7()),
    ]
    await publish(bootstrap_servers, topic, events, times=2)
    await wait_until(
        lambda: _handled_at_least(registry, len(events)), timeout=60, message="events applied"
    )
    return {"ids": ids, "erased": erased}


async def _handled_at_least(registry: Registry, n: int) -> bool:
    return await handled(registry) >= n


async def _get(client: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _counts(table: dict[str, Any]) -> dict[str, int | None]:
    return {item["key"]: item["members"] for item in table["items"]}


async def test_counts_follow_the_events_add_up_and_survive_redelivery_and_erasure(
    stats_registry: Registry,
    api: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    identity_provider: LocalIssuer,
) -> None:
    loaded = await _load(stats_registry, kafka_bootstrap, topic_prefix + REGISTRY_MEMBERS.name)
    headers = identity_provider.headers(coordinator())
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=10) as client:
        by_country = await _get(client, "/statistics/members", by="country", exact="true")
        # 18 - refused - erased - merged = 15; the mover now counts in France.
        assert by_country["total"] == 15
        assert _counts(by_country) == {"FR": 11, "BJ": 3, "DE": 1}
        assert by_country["items"][0]["label"] == "France"
        for dimension in ("sex", "education", "age_band", "occupation", "city", "embassy"):
            table = await _get(client, "/statistics/members", by=dimension, exact="true")
            assert table["total"] == 15
            assert sum(_counts(table).values()) == 15, dimension  # type: ignore[arg-type]
        by_city = _counts(await _get(client, "/statistics/members", by="city", exact="true"))
        assert by_city == {"2988507": 10, "2394819": 3, "2950159": 1, "2996944": 1}
        occupation = _counts(
            await _get(client, "/statistics/members", by="occupation", exact="true")
        )
        assert occupation == {"2": 8, "none": 7}
        # Filters: the slice of one country and one ISCO major group.
        french_doctors = await _get(
            client,
            "/statistics/members",
            by="education",
            country="FR",
            occupation="2",
            exact="true",
        )
        assert french_doctors["total"] == 7
        assert _counts(french_doctors) == {"7": 5, "unknown": 2}
        skills = await _get(client, "/statistics/members", by="skill", exact="true")
        assert _counts(skills) == {"text:chirurgie pédiatrique": 6}
        assert skills["items"][0]["label"] == "Chirurgie pédiatrique"

    async with stats_registry.sessions() as session, session.begin():
        assert await counts_match_recount(session)
        facts = (await session.execute(select(stats_members))).all()
        cities = [r.name for r in (await session.execute(select(stats_cities))).all()]
        labels = [r.label for r in (await session.execute(select(stats_labels))).all()]
    assert loaded["erased"] not in {f.member_id for f in facts}
    # Nothing the erased person typed stays: their free-text skill and unknown-to-others city.
    assert "Kiel" not in cities
    assert all("Zyx" not in label for label in labels)
    assert len(facts) == 16  # the refuser stays as "not counted"


async def test_small_cells_are_suppressed_for_analysts_and_the_public_with_complements(
    stats_registry: Registry,
    api: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    identity_provider: LocalIssuer,
) -> None:
    await _load(stats_registry, kafka_bootstrap, topic_prefix + REGISTRY_MEMBERS.name)
    async with httpx.AsyncClient(base_url=api, timeout=10) as public:
        countries = await _get(public, "/statistics/members", by="country")
        assert countries["exact"] is False
        assert countries["threshold"] == 5
        assert countries["total"] == 15
        # DE (1) and BJ (3) are small; their sum (4) is still under 5, so FR (11) is hidden too:
        # otherwise 15 - 11 would give DE + BJ.
        assert _counts(countries) == {"FR": None, "DE": None, "BJ": None}
        sexes = await _get(public, "/statistics/members", by="sex")
        assert all(v is None or v >= 5 for v in _counts(sexes).values())
        hidden = [k for k, v in _counts(sexes).items() if v is None]
        assert len(hidden) != 1
        refused = await public.get("/statistics/members", params={"exact": "true"})
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
        bad = await public.get("/statistics/members", params={"by": "religion"})
        assert bad.status_code == 422
        bad_country = await public.get("/statistics/members", params={"country": "XX"})
        assert bad_country.status_code == 422
        assert bad_country.headers["content-type"].startswith("application/problem+json")

    async with httpx.AsyncClient(
        base_url=api, headers=identity_provider.headers(analyst()), timeout=10
    ) as client:
        cities = await _get(client, "/statistics/members", by="city", country="FR")
        # Paris 10, Lyon 1: Lyon hidden, and Paris with it (else 11 - 10).
        assert _counts(cities) == {"2988507": None, "2996944": None}
        assert (
            await client.get("/statistics/members", params={"exact": "true"})
        ).status_code == 403

    # An officer sees only their embassy's figures.
    async with httpx.AsyncClient(
        base_url=api, headers=identity_provider.headers(officer("de-berlin")), timeout=10
    ) as client:
        berlin = await _get(client, "/statistics/members", by="country")
        assert berlin["total"] is None  # 2 members: under the threshold
        assert _counts(berlin) == {"DE": None}

    async with httpx.AsyncClient(
        base_url=api, headers=identity_provider.headers(admin()), timeout=10
    ) as client:
        exact = await _get(client, "/statistics/members", by="city", country="FR", exact="true")
        assert _counts(exact) == {"2988507": 10, "2996944": 1}


async def test_geojson_map_and_csv_export(
    stats_registry: Registry,
    api: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    identity_provider: LocalIssuer,
) -> None:
    await _load(stats_registry, kafka_bootstrap, topic_prefix + REGISTRY_MEMBERS.name)
    async with httpx.AsyncClient(
        base_url=api, headers=identity_provider.headers(coordinator()), timeout=10
    ) as client:
        response = await client.get("/statistics/map", params={"exact": "true"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/geo+json"
        collection = response.json()
        _assert_geojson(collection)
        points = {
            (f["properties"]["level"], f["properties"].get("city") or f["properties"]["country"]): f
            for f in collection["features"]
        }
        assert points[("country", "FR")]["properties"]["members"] == 11
        paris = points[("city", "2988507")]
        assert paris["properties"]["members"] == 10
        assert paris["properties"]["name"] == "Paris"
        lon, lat = paris["geometry"]["coordinates"]
        assert abs(lat - 48.85) < 0.1
        assert abs(lon - 2.35) < 0.1
        assert ("city", "2996944") in points  # Lyon: exact view shows it

        suppressed = (await client.get("/statistics/map")).json()
        _assert_geojson(suppressed)
        # With suppression, every country is hidden (see the complementary rule), so nothing.
        assert suppressed["features"] == []

        export = await client.get("/statistics/export", params={"exact": "true"})
        assert export.status_code == 200
        assert export.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(export.text)))
        assert rows[0] == {
            "dimension": "total",
            "key": "all",
            "label": "Total",
            "members": "15",
            "suppressed": "false",
        }
        by_dimension: dict[str, dict[str, str]] = {}
        for row in rows[1:]:
            by_dimension.setdefault(row["dimension"], {})[row["key"]] = row["members"]
        assert by_dimension["country"] == {"FR": "11", "BJ": "3", "DE": "1"}
        assert sum(int(v) for v in by_dimension["sex"].values()) == 15

        public = (await client.get("/statistics/export")).text
        public_rows = list(csv.DictReader(io.StringIO(public)))
        assert {r["members"] for r in public_rows if r["dimension"] == "country"} == {""}
        assert {r["suppressed"] for r in public_rows if r["dimension"] == "country"} == {"true"}


def _assert_geojson(collection: dict[str, Any]) -> None:
    """RFC 7946 structure: a FeatureCollection of Point features with [lon, lat]."""
    assert collection["type"] == "FeatureCollection"
    assert isinstance(collection["features"], list)
    for feature in collection["features"]:
        assert feature["type"] == "Feature"
        assert set(feature) >= {"type", "geometry", "properties"}
        geometry = feature["geometry"]
        assert geometry["type"] == "Point"
        lon, lat = geometry["coordinates"]
        assert -180 <= lon <= 180
        assert -90 <= lat <= 90
        assert isinstance(feature["properties"]["members"], int)
        assert feature["properties"]["level"] in ("country", "city")
