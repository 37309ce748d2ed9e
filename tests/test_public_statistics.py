"""Published statistics through the gateway, without a token, over real processes: the
registry API, its relay and worker (read models), nginx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from diaspora_devstack.testing import wait_until
from diaspora_identity.testing import analyst, citizen
from tests.conftest import GatewayFactory, LocalPlatform

pytestmark = pytest.mark.integration


def person(i: int, country: str) -> dict[str, Any]:
    return {
        "given_name": f"Ama{i}",
        "family_name": "Kouévi",
        "date_of_birth": "1990-04-27",
        "country_of_residence": country,
        "email": f"ama{i}@example.org",
        "phone": "+33612345678",
        "city": "Paris" if country == "FR" else "Berlin",
        "occupations": [{"isco_code": "2211"}],
    }


async def test_anyone_reads_suppressed_statistics_through_the_gateway(
    platform: LocalPlatform, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15) as client:
        for i, country in enumerate(["FR"] * 7 + ["DE"] * 1):
            created = await client.post(
                "/api/registry/members",
                json=person(i, country),
                headers=platform.issuer.headers(citizen(f"public-stats-{i}")),
            )
            assert created.status_code == 201, created.text

        async def counted() -> bool:
            found = await client.get("/api/registry/statistics/members")
            return found.status_code == 200 and found.json()["total"] == 8

        await wait_until(counted, timeout=60, message="the statistics read model")
        # No Authorization header at all: the public role.
        countries = await client.get("/api/registry/statistics/members", params={"by": "country"})
        assert countries.status_code == 200
        # Public statistics may be cached (the registry's header, kept by the gateway: its
        # $cache_control map); with a token they are private, and so is everything else.
        assert countries.headers["cache-control"] == "public, max-age=60"
        assert countries.headers["vary"] == "Authorization"
        items = {i["key"]: i["members"] for i in countries.json()["items"]}
        # Germany (1) is small; France (7) would give it away (8 - 7): both hidden.
        assert items == {"FR": None, "DE": None}
        occupations = await client.get(
            "/api/registry/statistics/members", params={"by": "occupation"}
        )
        assert {i["key"]: i["members"] for i in occupations.json()["items"]} == {"2": 8}
        geo = await client.get("/api/registry/statistics/map", params={"country": "FR"})
        assert geo.headers["content-type"] == "application/geo+json"
        features = geo.json()["features"]
        assert {(f["properties"]["level"], f["properties"]["members"]) for f in features} == {
            ("country", 7),
            ("city", 7),
        }
        assert (await client.get("/api/registry/statistics/export")).status_code == 200
        # Exact counts need a role that has them; a bad token is still refused.
        exact = await client.get("/api/registry/statistics/members", params={"exact": "true"})
        assert exact.status_code == 403
        bad = await client.get(
            "/api/registry/statistics/members", headers={"Authorization": "Bearer nonsense"}
        )
        assert bad.status_code == 401
        # With a token the statistics are the caller's (private): never cached.
        staff = await client.get(
            "/api/registry/statistics/members", headers=platform.issuer.headers(analyst())
        )
        assert staff.status_code == 200, staff.text
        assert staff.headers["cache-control"] == "no-store"
        # Member records stay closed to anonymous callers.
        assert (await client.get("/api/registry/members")).status_code == 401
