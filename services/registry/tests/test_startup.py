"""The registry API starts while its database is down, and catches up when it is back."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select, text

from diaspora_devstack.testing import TcpForwarder, asyncpg_url, serve_app
from diaspora_identity.testing import LocalIssuer, admin
from registry.bootstrap import bootstrap
from registry.entrypoints.http import build_app
from registry.members.tables import members
from registry.resources import Registry
from registry.settings import RegistrySettings

pytestmark = pytest.mark.integration


async def test_the_api_starts_without_its_database_and_reconciles_embassies_once_it_is_back(
    registry_url: str,
    registry: Registry,
    registry_database: str,
    kafka_bootstrap: str,
    identity_provider: LocalIssuer,
) -> None:
    staff = identity_provider.headers(admin())
    async with httpx.AsyncClient(base_url=registry_url, timeout=10, headers=staff) as client:
        body = {
            "given_name": "Kodjo",
            "family_name": "Amegah",
            "date_of_birth": "1985-02-11",
            "country_of_residence": "IT",
            "email": "kodjo.amegah@example.org",
            "phone": "+393123456789",
            "consent_recorded": {"method": "signed_form"},
        }
        created = await client.post("/members", json=body)
        assert created.status_code == 201, created.text
    # As if the jurisdictions file had changed since the member was registered.
    async with registry.sessions() as session, session.begin():
        await session.execute(text("UPDATE members SET embassy_id = 'de-berlin'"))

    server = urlsplit(registry_database)
    database = TcpForwarder(server.hostname or "127.0.0.1", server.port or 5432)  # not open
    behind_forwarder = server._replace(netloc=f"postgres@127.0.0.1:{database.port}").geturl()
    second = bootstrap(
        RegistrySettings(
            database_url=asyncpg_url(behind_forwarder),
            kafka_bootstrap=kafka_bootstrap,
            environment="test",
            json_logs=False,
            oidc_issuer=identity_provider.issuer,
        )
    )
    try:
        async with (
            serve_app(build_app(second)) as url,  # starts although the database refuses
            httpx.AsyncClient(base_url=url, timeout=10, headers=staff) as client,
        ):
            assert (await client.get("/health/live")).status_code == 200
            ready = await client.get("/health/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"] is False
            refused = await client.post("/members", json={**body, "email": "x@example.org"})
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "5"

            await database.open()
            for _ in range(300):
                async with registry.sessions() as session:
                    embassy = (await session.execute(select(members.c.embassy_id))).scalar()
                if embassy == "fr-paris":
                    break
                await asyncio.sleep(0.1)
            assert embassy == "fr-paris"  # re-derived by the background chore
            assert (await client.get("/health/ready")).status_code == 200
    finally:
        await second.close()
        await database.close()
