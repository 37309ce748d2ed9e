"""The sensitive fields of a returnee's case, end to end with the registry.

A person registers in the registry; returnees' worker builds its people read model
from ``registry.members`` (sealed: it fetches the person's data key from the registry's
key service). A case worker opens their case with vulnerabilities, takes it and records
health and psychosocial notes: the row holds them sealed with the person's key, the
assigned case worker reads them, another case worker gets the case without them (and is
told why). Every staff read is audited and reaches the person's access log at the
registry (``returnees.audit.recorded`` through the real broker). The person then erases
their record: the key is destroyed, returnees' erasure step removes the sensitive fields
and unlinks the case, and the ciphertext kept before no longer opens.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select

from diaspora_devstack.testing import app_url, asyncpg_url, free_port, serve_app, wait_until
from diaspora_events.kafka import ensure_topics
from diaspora_events.topics import ALL_TOPICS, with_prefix
from diaspora_identity.testing import LocalIssuer, case_worker, citizen
from diaspora_service.worker import outbox_relay
from registry.bootstrap import bootstrap as registry_bootstrap
from registry.entrypoints.http import build_app as registry_app
from registry.entrypoints.worker import run as registry_worker
from registry.resources import Registry
from registry.settings import RegistrySettings
from registry.tables import outbox as registry_outbox
from returnees.bootstrap import bootstrap as returnees_bootstrap
from returnees.cases import sealing
from returnees.cases.tables import cases
from returnees.entrypoints.http import build_app as returnees_app
from returnees.entrypoints.relay import run as returnees_relay
from returnees.entrypoints.worker import run as returnees_worker
from returnees.members.tables import people, removed_people
from returnees.resources import Returnees
from returnees.settings import ReturneesSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEALTH = "Diabète de type 2, traitement interrompu depuis le départ"
PSYCHOSOCIAL = "Troubles du sommeil après la détention"


@pytest.fixture
def returnees_service(
    returnees_database: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    identity_provider: LocalIssuer,
) -> ReturneesSettings:
    return ReturneesSettings(
        database_url=asyncpg_url(app_url(returnees_database, "returnees")),
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        environment="test",
        json_logs=False,
        oidc_issuer=identity_provider.issuer,
        oidc_audience=identity_provider.audience,
        oidc_jwks_min_refresh_seconds=0,
    )


async def case_row(service: Returnees, case_id: str) -> dict[str, Any]:
    async with service.sessions() as session:
        row = (await session.execute(select(cases).where(cases.c.id == UUID(case_id)))).mappings()
        return dict(row.one())


async def test_sensitive_fields_sealed_shown_to_the_assignee_only_logged_and_erased(
    registry_service: RegistrySettings,
    returnees_service: ReturneesSettings,
    identity_provider: LocalIssuer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Returnees fetches persons' data keys from this test's registry API.
    registry_port = free_port()
    monkeypatch.setenv("RETURNEES_EVENT_KEYS_URL", f"http://127.0.0.1:{registry_port}")
    monkeypatch.setenv("RETURNEES_EVENT_KEYS_TOKEN_URL", identity_provider.issuer + "/token")
    registry: Registry = registry_bootstrap(registry_service)
    returnees: Returnees = returnees_bootstrap(returnees_service)
    stop = asyncio.Event()
    # The registry's relay, as `registry-relay` runs it (its entry point takes no handles).
    await ensure_topics(
        registry_service.kafka,
        [with_prefix(t, registry_service.topic_prefix) for t in ALL_TOPICS],
    )
    relay = outbox_relay("registry", registry_service, registry.engine, registry_outbox)
    workers = [
        asyncio.create_task(relay.run(stop)),
        asyncio.create_task(registry_worker(registry_bootstrap(registry_service), stop)),
        asyncio.create_task(returnees_relay(returnees_bootstrap(returnees_service), stop)),
        asyncio.create_task(returnees_worker(returnees_bootstrap(returnees_service), stop)),
    ]
    try:
        async with (
            serve_app(registry_app(registry), port=registry_port) as registry_url,
            serve_app(returnees_app(returnees)) as returnees_url,
            httpx.AsyncClient(base_url=registry_url, timeout=20) as reg,
            httpx.AsyncClient(base_url=returnees_url, timeout=20) as api,
        ):
            person = identity_provider.headers(citizen("yao-returnee"))
            registered = await reg.post(
                "/members",
                headers=person,
                json={
                    "given_name": "Yao",
                    "family_name": "Amouzou",
                    "date_of_birth": "1994-02-11",
                    "country_of_residence": "LY",
                    "email": "yao.amouzou@example.org",
                    "phone": "+218912345678",
                    "preferred_language": "fr",
                },
            )
            assert registered.status_code == 201, registered.text
            member_id = UUID(registered.json()["id"])

            async def known() -> bool:
                async with returnees.sessions() as session:
                    found = await session.scalar(
                        select(people.c.given_name).where(people.c.member_id == member_id)
                    )
                return found == "Yao"

            await wait_until(known, timeout=60, message="the person in returnees' read model")

            kossiwa = case_worker("cw-kossiwa")
            edem = case_worker("cw-edem")
            assigned_to_me = identity_provider.headers(kossiwa)
            other = identity_provider.headers(edem)
            opened = await api.post(
                "/cases",
                headers=assigned_to_me,
                json={
                    "member_id": str(member_id),
                    "return_date": "2026-11-20",
                    "country_from": "LY",
                    "reason": "expelled",
                    "vulnerabilities": ["victim_of_trafficking", "medical_condition"],
                },
            )
            assert opened.status_code == 201, opened.text
            case_id = opened.json()["id"]
            assert opened.json()["returnee"]["given_name"] == "Yao"
            # Not assigned yet: nobody, not even its author, sees the sensitive fields.
            assert opened.json()["sensitive"] is None
            assert opened.json()["sensitive_withheld"] == "not_assigned_case_worker"
            taken = await api.put(
                f"/cases/{case_id}/assignee",
                headers=assigned_to_me,
                json={"case_worker": kossiwa.subject},
            )
            assert taken.status_code == 200, taken.text
            assessed = await api.post(
                f"/cases/{case_id}/needs",
                headers=assigned_to_me,
                json={
                    "needs": [
                        {"area": "health", "priority": "high", "met": False},
                        {"area": "psychosocial", "priority": "high", "met": False},
                        {"area": "housing", "priority": "medium", "met": True},
                    ],
                    "health_notes": HEALTH,
                    "psychosocial_notes": PSYCHOSOCIAL,
                },
            )
            assert assessed.status_code == 200, assessed.text

            # At rest: ciphertext only, sealed for the person.
            row = await case_row(returnees, case_id)
            assert row["sealed_subject"] == member_id
            for secret in (HEALTH, PSYCHOSOCIAL, "victim_of_trafficking"):
                assert secret.encode() not in row["sensitive"]
            sealed_before = row["sensitive"]

            # The assigned case worker reads them; another case worker does not.
            mine = (await api.get(f"/cases/{case_id}", headers=assigned_to_me)).json()
            assert mine["sensitive"] == {
                "vulnerabilities": ["victim_of_trafficking", "medical_condition"],
                "vulnerability_notes": None,
                "health_notes": HEALTH,
                "psychosocial_notes": PSYCHOSOCIAL,
            }
            theirs = await api.get(f"/cases/{case_id}", headers=other)
            assert theirs.status_code == 200
            assert theirs.json()["sensitive"] is None
            assert theirs.json()["sensitive_withheld"] == "not_assigned_case_worker"
            assert HEALTH not in theirs.text
            assert "trafficking" not in theirs.text
            listed = await api.get("/cases", headers=other)
            assert HEALTH not in listed.text

            # Every staff read is in the person's access log, the sensitive fields named
            # only on the reads that showed them.
            async def log() -> list[dict[str, Any]]:
                answer = await reg.get(f"/members/{member_id}/access-log", headers=person)
                assert answer.status_code == 200, answer.text
                return [i for i in answer.json()["items"] if i["service"] == "returnees"]

            async def reads_arrived() -> bool:
                entries = await log()
                return {e["actor_subject"] for e in entries if e["action"] == "read"} == {
                    kossiwa.subject,
                    edem.subject,
                }

            await wait_until(reads_arrived, timeout=90, message="returnees' reads in the log")
            reads = [e for e in await log() if e["action"] == "read"]
            by_worker = {e["actor_subject"]: e for e in reads}
            assert "health_notes" in by_worker[kossiwa.subject]["fields"]
            assert "health_notes" not in by_worker[edem.subject]["fields"]
            assert by_worker[edem.subject]["actor_roles"] == ["case_worker"]

            # Erasure: the key is destroyed at the registry; returnees' step removes the
            # sensitive fields and the link to the person; the old ciphertext is dead.
            erased = await reg.delete(f"/members/{member_id}", headers=person)
            assert erased.status_code == 204, erased.text

            async def unlinked() -> bool:
                return (await case_row(returnees, case_id))["member_id"] is None

            await wait_until(unlinked, timeout=90, message="returnees' erasure step")
            row = await case_row(returnees, case_id)
            assert (row["sensitive"], row["sealed_subject"], row["milestones"]) == (None, None, [])
            assert row["return_date"].day == 1  # the month stays, for the counts
            assert (row["country_from"], row["reason"], row["status"]) == (
                "LY",
                "expelled",
                "assessed",
            )
            assert returnees.case_keys is not None
            with pytest.raises(sealing.KeyGone):
                await sealing.open_sealed(
                    returnees.case_keys, UUID(case_id), member_id, sealed_before
                )
            async with returnees.sessions() as session:
                assert (
                    await session.scalar(select(people).where(people.c.member_id == member_id))
                ) is None
                assert (
                    await session.scalar(
                        select(removed_people.c.reason).where(
                            removed_people.c.member_id == member_id
                        )
                    )
                ) == "erased"
            after = (await api.get(f"/cases/{case_id}", headers=assigned_to_me)).json()
            assert (after["sensitive"], after["member_id"], after["returnee"]) == (
                None,
                None,
                None,
            )
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers, return_exceptions=True), timeout=60)
        await registry.close()
        await returnees.close()
