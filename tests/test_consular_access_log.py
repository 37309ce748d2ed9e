"""An embassy officer's read of an application shows in the person's access log.

The person registers in the registry; consular's applicants read model holds them (as
its consumer of ``registry.members`` writes it); they upload its documents and submit
an application; an officer of their embassy opens it and one of its documents. Consular
audits both reads and its relay publishes
``consular.audit.recorded`` on the real broker, sealed with the person's key from the
registry's key service; the registry worker's ``registry-access-log`` consumer keeps it,
and the person sees it in ``GET /members/{id}/access-log``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from consular_testing import upload_required_documents

from consular.bootstrap import bootstrap as consular_bootstrap
from consular.entrypoints.http import build_app as consular_app
from consular.entrypoints.relay import run as consular_relay
from consular.members import service as consular_members
from consular.resources import Consular
from consular.settings import ConsularSettings
from diaspora_devstack.testing import app_url, asyncpg_url, free_port, serve_app, wait_until
from diaspora_documents.settings import StoreSettings
from diaspora_events.contracts.registry import MemberProfile
from diaspora_identity.testing import LocalIssuer, citizen, officer
from registry.access_log.tables import member_accesses
from registry.bootstrap import bootstrap as registry_bootstrap
from registry.entrypoints.http import build_app as registry_app
from registry.entrypoints.worker import run as registry_worker
from registry.resources import Registry
from registry.settings import RegistrySettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSPORT_ANSWERS = {"request_kind": "renewal", "height_cm": 172, "place_of_birth": "Kpalimé"}


@pytest.fixture
def consular_service(
    consular_database: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    identity_provider: LocalIssuer,
    tmp_path: Path,
) -> ConsularSettings:
    return ConsularSettings(
        database_url=asyncpg_url(app_url(consular_database, "consular")),
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        environment="test",
        json_logs=False,
        oidc_issuer=identity_provider.issuer,
        oidc_audience=identity_provider.audience,
        oidc_jwks_min_refresh_seconds=0,
        documents=StoreSettings(local_root=tmp_path / "documents"),
    )


async def test_an_officers_read_of_an_application_shows_in_the_persons_access_log(
    registry_service: RegistrySettings,
    consular_service: ConsularSettings,
    identity_provider: LocalIssuer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Consular seals its audit events with the person's key from the registry's key
    # service (crypto-shredding): this test's registry API.
    registry_port = free_port()
    monkeypatch.setenv("CONSULAR_EVENT_KEYS_URL", f"http://127.0.0.1:{registry_port}")
    monkeypatch.setenv("CONSULAR_EVENT_KEYS_TOKEN_URL", identity_provider.issuer + "/token")
    registry: Registry = registry_bootstrap(registry_service)
    consular: Consular = consular_bootstrap(consular_service)
    stop = asyncio.Event()
    workers = [
        asyncio.create_task(registry_worker(registry_bootstrap(registry_service), stop)),
        asyncio.create_task(consular_relay(consular_bootstrap(consular_service), stop)),
    ]
    try:
        async with (
            serve_app(registry_app(registry), port=registry_port) as registry_url,
            serve_app(consular_app(consular)) as consular_url,
        ):
            person = identity_provider.headers(citizen("kossi-access-log"))
            async with httpx.AsyncClient(base_url=registry_url, timeout=20) as api:
                registered = await api.post(
                    "/members",
                    headers=person,
                    json={
                        "given_name": "Kossi",
                        "family_name": "Agbeko",
                        "date_of_birth": "1987-09-14",
                        "country_of_residence": "FR",
                        "email": "kossi.agbeko@example.org",
                        "phone": "+33612345679",
                        "preferred_language": "fr",
                    },
                )
                assert registered.status_code == 201, registered.text
                member_id = UUID(registered.json()["id"])
                # Consular's read model holds the person (as its consumer writes it).
                async with consular.sessions() as session, session.begin():
                    await consular_members.apply_snapshot(
                        session,
                        member_id,
                        MemberProfile(
                            given_name="Kossi",
                            family_name="Agbeko",
                            date_of_birth=datetime(1987, 9, 14).date(),
                            email="kossi.agbeko@example.org",
                            phone="+33612345679",
                            country_of_residence="FR",
                            embassy_id="fr-paris",
                        ),
                        datetime.now(UTC),
                    )

                applicant = identity_provider.headers(
                    citizen("kossi-access-log", member_id=member_id)
                )
                paris = identity_provider.headers(officer("fr-paris", subject="officer-afi"))
                async with httpx.AsyncClient(base_url=consular_url, timeout=20) as desk:
                    created = await desk.post(
                        "/applications",
                        json={"service_type": "passport_preparation", "answers": {}},
                        headers=applicant,
                    )
                    assert created.status_code == 201, created.text
                    app_id = created.json()["id"]
                    uploaded = await upload_required_documents(
                        desk, applicant, app_id, "passport_preparation"
                    )
                    submitted = await desk.post(
                        f"/applications/{app_id}/transitions",
                        json={"action": "submit", "answers": PASSPORT_ANSWERS},
                        headers=applicant,
                    )
                    assert submitted.status_code == 200, submitted.text
                    # The applicant's own reads are not audited; the officer's is.
                    assert (
                        await desk.get(f"/applications/{app_id}", headers=applicant)
                    ).status_code == 200
                    seen = await desk.get(f"/applications/{app_id}", headers=paris)
                    assert seen.status_code == 200, seen.text
                    # The officer opens one of the documents: an access too.
                    document = await desk.get(
                        f"/applications/{app_id}/documents/{uploaded[0]['id']}", headers=paris
                    )
                    assert document.status_code == 200, document.text

                async def log() -> list[dict[str, Any]]:
                    answer = await api.get(f"/members/{member_id}/access-log", headers=person)
                    assert answer.status_code == 200, answer.text
                    items: list[dict[str, Any]] = answer.json()["items"]
                    return items

                async def read_arrived() -> bool:
                    return len([i for i in await log() if i["service"] == "consular"]) >= 2

                await wait_until(
                    read_arrived, timeout=60, message="consular's audit entry in the access log"
                )
                consular_entries = [i for i in await log() if i["service"] == "consular"]
                assert sorted(i["action"] for i in consular_entries) == ["download", "read"]
                assert {i["actor_subject"] for i in consular_entries} == {"officer-afi"}
                assert consular_entries[0]["actor_roles"] == ["embassy_officer"]
            # Nothing else of consular's reached the registry (the applicant's own reads
            # are not accesses by someone else).
            async with registry.sessions() as session:
                rows = (
                    await session.execute(
                        member_accesses.select().where(member_accesses.c.service == "consular")
                    )
                ).all()
            assert len(rows) == 2
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers, return_exceptions=True), timeout=60)
        await registry.close()
        await consular.close()
