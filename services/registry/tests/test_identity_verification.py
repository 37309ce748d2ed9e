"""Identity verification against the real database and broker: an officer's check raises
the record's level (GET, ETag), the sealed event on ``registry.members`` carries it, a
weaker later check keeps it; who may do it (403, 404), bad evidence (422), erasure removes
the checks, a merge keeps the strongest for the survivor."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import func, select

from diaspora_devstack.testing import asyncpg_url, read_topic, serve_app
from diaspora_events.cloudevents import VERSION_ATTRIBUTE, headers_from_kafka
from diaspora_events.contracts import MemberIdentityVerifiedV1, MemberUpdatedV1
from diaspora_events.kafka import ensure_topics
from diaspora_events.outbox import OutboxRelay
from diaspora_events.shredding import SEALED, unseal
from diaspora_events.topics import ALL_TOPICS, REGISTRY_MEMBERS, with_prefix
from diaspora_identity.testing import (
    LocalIssuer,
    admin,
    analyst,
    citizen,
    coordinator,
    officer,
)
from registry.bootstrap import bootstrap
from registry.crypto import DocumentCipher, generate_key, parse_keys
from registry.entrypoints.http import build_app
from registry.entrypoints.rekey import rekey, remaining
from registry.identity.service import open_number
from registry.identity.tables import identity_verifications
from registry.members.tables import members
from registry.resources import Registry
from registry.settings import RegistrySettings
from registry.tables import audit_log, outbox

from .test_duplicates_api import flagged_pair

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).date()
PASSPORT = "TG7654321"


def person(subject: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "given_name": "Yawa",
        "family_name": "Dzifa-Amegan",
        "date_of_birth": "1990-02-11",
        "country_of_residence": "FR",
        "email": f"{subject}@example.fr",
        "phone": "+33755001122",
    }
    body.update(overrides)
    return body


def evidence(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "method": "document_in_person",
        "document_type": "passport",
        "document_number": PASSPORT,
        "document_expires_on": (TODAY + timedelta(days=5 * 365)).isoformat(),
        "seen_on": TODAY.isoformat(),
        "note": "Passeport original présenté au guichet.",
    }
    body.update(overrides)
    return body


async def register(http: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> str:
    created = await http.post("/members", json=body, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def verification_rows(registry: Registry, member_id: str | UUID) -> list[Any]:
    async with registry.sessions() as session:
        found = await session.execute(
            select(identity_verifications).where(
                identity_verifications.c.member_id == UUID(str(member_id))
            )
        )
        return list(found.mappings().all())


# --- the event on the topic, sealed ---------------------------------------------------------


@pytest.fixture
def _kek_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_EVENT_KEK_FILE", str(tmp_path / "kek.key"))


@pytest.fixture
async def live(
    _kek_file: None,
    registry_database: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    identity_provider: LocalIssuer,
) -> AsyncIterator[tuple[Registry, str]]:
    """The registry API and its outbox relay (to the test's own topics), events sealed."""
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
    owned = [with_prefix(t, topic_prefix) for t in ALL_TOPICS if t.owner == "registry"]
    await ensure_topics(kafka_bootstrap, owned)
    relay = OutboxRelay(
        engine=service.engine,
        table=outbox,
        bootstrap_servers=kafka_bootstrap,
        client_id="registry-relay-test",
        topic_prefix=topic_prefix,
        poll_interval=0.2,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    async with serve_app(build_app(service)) as base_url:
        yield service, base_url
    stop.set()
    await asyncio.wait_for(task, timeout=30)
    await service.close()


@pytest.mark.sealed
async def test_a_check_raises_the_level_a_weaker_one_keeps_it_and_the_sealed_event_says_so(
    live: tuple[Registry, str],
    identity_provider: LocalIssuer,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    registry, url = live
    assert registry.keys is not None, "events are sealed in this test"
    persona = citizen("yawa-identity")
    paris = identity_provider.headers(officer("fr-paris", subject="officer-paris-1"))
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        member_id = await register(http, identity_provider.headers(persona), person("yawa"))
        me = identity_provider.headers(citizen(persona.subject, member_id=UUID(member_id)))
        mine = await http.get(f"/members/{member_id}", headers=me)
        assert mine.json()["identity"] is None
        assert mine.headers["etag"] == '"1"'

        # The officer saw the passport at the counter: level in_person, version 2.
        first = await http.post(
            f"/members/{member_id}/identity-verifications",
            json=evidence(),
            headers={**paris, "If-Match": '"1"'},
        )
        assert first.status_code == 201, first.text
        assert first.headers["etag"] == '"2"'
        recorded = first.json()
        assert recorded["identity"]["level"] == "in_person"
        assert recorded["verification"]["verified_by"] == "officer-paris-1"
        assert recorded["verification"]["document_number"] is None  # staff never read it back

        mine = await http.get(f"/members/{member_id}", headers=me)
        assert mine.status_code == 200
        assert mine.headers["etag"] == '"2"'
        identity = mine.json()["identity"]
        assert identity["level"] == "in_person"
        assert identity["method"] == "document_in_person"
        assert identity["document_type"] == "passport"
        assert identity["embassy_id"] == "fr-paris"
        assert identity["expires_on"] == evidence()["document_expires_on"]

        # A later upload of another document is a weaker check: recorded, level unchanged.
        stale = await http.post(
            f"/members/{member_id}/identity-verifications",
            json=evidence(method="document_upload", document_type="national_id_card"),
            headers={**paris, "If-Match": '"1"'},
        )
        assert stale.status_code == 412
        second = await http.post(
            f"/members/{member_id}/identity-verifications",
            json=evidence(
                method="document_upload",
                document_type="national_id_card",
                document_number="cni 0099-88",
                document_expires_on=(TODAY + timedelta(days=9 * 365)).isoformat(),
                note=None,
            ),
            headers={**paris, "If-Match": '"2"'},
        )
        assert second.status_code == 201, second.text
        assert second.json()["identity"]["level"] == "in_person"
        assert second.json()["verification"]["level"] == "document_checked"
        mine = await http.get(f"/members/{member_id}", headers=me)
        assert mine.json()["identity"]["level"] == "in_person"
        assert mine.json()["version"] == 3

        # The history: both checks, newest first; numbers for the person only.
        staff_view = await http.get(f"/members/{member_id}/identity-verifications", headers=paris)
        assert staff_view.status_code == 200, staff_view.text
        items = staff_view.json()["items"]
        assert [i["method"] for i in items] == ["document_upload", "document_in_person"]
        assert [i["document_number"] for i in items] == [None, None]
        assert staff_view.json()["identity"]["level"] == "in_person"
        own_view = await http.get(f"/members/{member_id}/identity-verifications", headers=me)
        assert [i["document_number"] for i in own_view.json()["items"]] == [
            "CNI0099-88",
            PASSPORT,
        ]
        changes = await http.get(f"/members/{member_id}/history", headers=me)
        actions = [c["action"] for c in changes.json()["items"]]
        assert actions == ["identity_verified", "identity_verified", "registered"]
        assert PASSPORT not in changes.text

    # Stored sealed; the officer's checks and the history read are audited.
    rows = await verification_rows(registry, member_id)
    assert len(rows) == 2
    assert all(PASSPORT.encode() not in bytes(r["number_ciphertext"]) for r in rows)
    async with registry.sessions() as session:
        audited = (
            await session.execute(
                select(audit_log.c.action, audit_log.c.fields)
                .where(audit_log.c.record_id == UUID(member_id))
                .order_by(audit_log.c.id)
            )
        ).all()
    assert [(a.action, list(a.fields)) for a in audited] == [
        ("verify_identity", ["identity"]),
        ("verify_identity", ["identity"]),
        ("identity_verifications", ["identity_verifications"]),
    ]

    # On the topic: two identity-verified events, sealed for the person, carrying the level.
    topic = with_prefix(REGISTRY_MEMBERS, topic_prefix).name
    records = await read_topic(kafka_bootstrap, topic, expect=3, timeout=60)
    about = [r for r in records if r.key == member_id.encode()]
    for record in about:
        assert PASSPORT.encode() not in record.value
        assert b"Dzifa" not in record.value
    verified = [
        r
        for r in about
        if dict(r.headers)["ce_type"] == MemberIdentityVerifiedV1.event_type.encode()
    ]
    assert len(verified) == 2
    key = (await registry.keys.data_keys([UUID(member_id)]))[UUID(member_id)]
    assert key is not None
    events = []
    for record in verified:
        headers = headers_from_kafka(record.headers)
        data = json.loads(record.value)
        assert SEALED in data
        assert "profile" not in data
        assert data["level"] == "in_person"  # in clear: not personal
        opened = unseal(
            data,
            event_id=headers["ce_id"],
            event_type=headers["ce_type"],
            version=int(headers[f"ce_{VERSION_ATTRIBUTE}"]),
            data_key=key,
        )
        events.append(MemberIdentityVerifiedV1.model_validate(opened))
    for event in events:
        assert event.level == "in_person"
        assert event.profile.identity is not None
        assert event.profile.identity.level == "in_person"
        assert event.profile.identity.expires_on == date.fromisoformat(
            evidence()["document_expires_on"]
        )
        assert event.profile.given_name == "Yawa"


# --- who may, and what evidence ---------------------------------------------------------------


async def test_citizens_are_refused_other_embassies_get_404_and_bad_evidence_is_422(
    registry: Registry, registry_url: str, identity_provider: LocalIssuer
) -> None:
    persona = citizen("kodjo-identity")
    paris = identity_provider.headers(officer("fr-paris"))
    berlin = identity_provider.headers(officer("de-berlin"))
    async with httpx.AsyncClient(base_url=registry_url, timeout=30) as http:
        member_id = await register(http, identity_provider.headers(persona), person("kodjo"))
        me = identity_provider.headers(citizen(persona.subject, member_id=UUID(member_id)))
        path = f"/members/{member_id}/identity-verifications"

        # A citizen cannot verify anyone, themselves included; nor can a coordinator.
        for headers in (me, identity_provider.headers(coordinator())):
            refused = await http.post(path, json=evidence(), headers=headers)
            assert refused.status_code == 403, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
        assert (await http.get(path, headers=identity_provider.headers(analyst()))).status_code == (
            403
        )
        assert (await http.post(path, json=evidence())).status_code == 401

        # Another embassy's officer: as if the member did not exist.
        for response in (
            await http.post(path, json=evidence(), headers=berlin),
            await http.get(path, headers=berlin),
        ):
            assert response.status_code == 404, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
        unknown = "/members/0190f1a2-7f73-75bf-bdda-60145c9948cd/identity-verifications"
        assert (await http.post(unknown, json=evidence(), headers=paris)).status_code == 404

        # Evidence that proves nothing: 422 problem naming the field, nothing stored.
        yesterday = (TODAY - timedelta(days=1)).isoformat()
        tomorrow = (TODAY + timedelta(days=1)).isoformat()
        bad = {
            "document_expires_on": evidence(document_expires_on=yesterday),
            "seen_on": evidence(seen_on=tomorrow),
            "method": evidence(method="video_call"),
            "document_type": evidence(document_type="library_card"),
            "document_number": evidence(document_number="<script>"),
            "note": evidence(note="ok\r\nBcc: someone@example.org"),
        }
        missing = evidence()
        del missing["document_expires_on"]
        bad["document_expires_on "] = missing  # a required field absent
        for field, body in bad.items():
            response = await http.post(path, json=body, headers=paris)
            assert response.status_code == 422, (field, response.text)
            problem = response.json()
            assert response.headers["content-type"].startswith("application/problem+json")
            named = json.dumps(problem.get("errors", []))
            assert field.strip() in named, (field, problem)
            assert PASSPORT not in response.text

        record = await http.get(f"/members/{member_id}", headers=me)
        assert record.json()["identity"] is None
        assert record.json()["version"] == 1
        # Coordinators and admins read the checks; admins may record one.
        assert (
            await http.get(path, headers=identity_provider.headers(coordinator()))
        ).status_code == 200
        by_admin = await http.post(
            path,
            json=evidence(method="document_upload"),
            headers=identity_provider.headers(admin()),
        )
        assert by_admin.status_code == 201, by_admin.text
        assert by_admin.json()["identity"]["level"] == "document_checked"
        # The person's copy of their data holds the check, with its number for them.
        export = (await http.get(f"/members/{member_id}/export", headers=me)).json()
        (exported,) = export["identity_verifications"]
        assert exported["document_number"] == PASSPORT
        assert exported["verified_by_role"] == "admin"
    assert len(await verification_rows(registry, member_id)) == 1


# --- erasure and merge ----------------------------------------------------------------------


async def test_erasure_removes_the_checks(
    registry: Registry, registry_url: str, identity_provider: LocalIssuer
) -> None:
    persona = citizen("afi-identity")
    paris = identity_provider.headers(officer("fr-paris"))
    async with httpx.AsyncClient(base_url=registry_url, timeout=30) as http:
        member_id = await register(http, identity_provider.headers(persona), person("afi"))
        path = f"/members/{member_id}/identity-verifications"
        for method in ("document_in_person", "document_upload"):
            done = await http.post(path, json=evidence(method=method), headers=paris)
            assert done.status_code == 201, done.text
        assert len(await verification_rows(registry, member_id)) == 2
        me = identity_provider.headers(citizen(persona.subject, member_id=UUID(member_id)))
        erased = await http.delete(f"/members/{member_id}", headers=me)
        assert erased.status_code == 204, erased.text
    assert await verification_rows(registry, member_id) == []
    async with registry.sessions() as session:
        left = await session.execute(select(func.count()).select_from(identity_verifications))
        assert left.scalar_one() == 0


async def test_a_merge_keeps_the_strongest_check_for_the_survivor(
    registry: Registry, registry_url: str, identity_provider: LocalIssuer
) -> None:
    paris = identity_provider.headers(officer("fr-paris"))
    async with httpx.AsyncClient(base_url=registry_url, headers=paris, timeout=60) as http:
        survivor, absorbed, case = await flagged_pair(http)
        # The record to be absorbed was verified in person; the survivor only remotely.
        strong = await http.post(f"/members/{absorbed}/identity-verifications", json=evidence())
        assert strong.status_code == 201, strong.text
        weak = await http.post(
            f"/members/{survivor}/identity-verifications",
            json=evidence(
                method="document_upload",
                document_type="consular_card",
                document_number="CC-2024-001",
            ),
        )
        assert weak.status_code == 201, weak.text
        assert weak.json()["identity"]["level"] == "document_checked"

        merged = await http.post(f"/duplicates/{case['id']}/merge", json={"survivor_id": survivor})
        assert merged.status_code == 200, merged.text
        assert "identity" in merged.json()["changed_fields"]

        record = (await http.get(f"/members/{survivor}")).json()
        assert record["identity"]["level"] == "in_person"
        assert record["identity"]["document_type"] == "passport"
        history = (await http.get(f"/members/{survivor}/identity-verifications")).json()
        assert sorted(i["level"] for i in history["items"]) == ["document_checked", "in_person"]

    assert await verification_rows(registry, absorbed) == []
    moved = await verification_rows(registry, survivor)
    # The numbers were sealed again for the survivor: they open under its id.
    assert sorted(open_number(registry.cipher, row) or "" for row in moved) == [
        "CC-2024-001",
        PASSPORT,
    ]
    async with registry.sessions() as session:
        column = (
            await session.execute(
                select(members.c.identity_checks).where(members.c.id == UUID(survivor))
            )
        ).scalar_one()
        assert set(column) == {"in_person", "document_checked"}
        rows = (
            await session.execute(
                select(outbox.c.value)
                .where(
                    outbox.c.key == survivor,
                    outbox.c.event_type == MemberUpdatedV1.event_type,
                )
                .order_by(outbox.c.id)
            )
        ).all()
    # The survivor's merged snapshot (events in clear in this test) carries the level.
    update = MemberUpdatedV1.model_validate(json.loads(rows[-1].value))
    assert "identity" in update.changed_fields
    assert update.profile.identity is not None
    assert update.profile.identity.level == "in_person"


async def test_rekey_moves_the_checks_document_numbers_to_the_active_key(
    registry: Registry, registry_url: str, identity_provider: LocalIssuer
) -> None:
    persona = citizen("mawuli-identity")
    async with httpx.AsyncClient(base_url=registry_url, timeout=30) as http:
        member_id = await register(http, identity_provider.headers(persona), person("mawuli"))
        done = await http.post(
            f"/members/{member_id}/identity-verifications",
            json=evidence(),
            headers=identity_provider.headers(officer("fr-paris")),
        )
        assert done.status_code == 201, done.text
    rotated = DocumentCipher(
        parse_keys(f"2027-01:{generate_key()},{registry.settings.document_keys}"), "2027-01"
    )
    assert await remaining(registry.sessions, "2027-01") == 1
    assert await rekey(registry.sessions, rotated, batch=1) == 1
    assert await remaining(registry.sessions, "2027-01") == 0
    (row,) = await verification_rows(registry, member_id)
    assert row["key_id"] == "2027-01"
    assert open_number(rotated, row) == PASSPORT


async def test_a_repeated_request_with_its_idempotency_key_records_one_check(
    registry: Registry, registry_url: str, identity_provider: LocalIssuer
) -> None:
    persona = citizen("kafui-identity")
    paris = identity_provider.headers(officer("fr-paris", subject="officer-paris-2"))
    async with httpx.AsyncClient(base_url=registry_url, timeout=30) as http:
        member_id = await register(http, identity_provider.headers(persona), person("kafui"))
        path = f"/members/{member_id}/identity-verifications"
        once = {**paris, "Idempotency-Key": "counter-2026-12-07-001", "If-Match": '"1"'}
        first = await http.post(path, json=evidence(), headers=once)
        assert first.status_code == 201, first.text
        # The answer was lost; the officer's screen sends it again, same key and If-Match.
        again = await http.post(path, json=evidence(), headers=once)
        assert again.status_code == 200, again.text
        assert again.json()["verification"]["id"] == first.json()["verification"]["id"]
        assert again.json()["version"] == 2
        assert again.headers["etag"] == '"2"'
        # The same key for another request is refused, nothing recorded.
        other = await http.post(path, json=evidence(method="document_upload"), headers=once)
        assert other.status_code == 422, other.text
        assert other.headers["content-type"].startswith("application/problem+json")
    assert len(await verification_rows(registry, member_id)) == 1
