"""A citizen's consular card, end to end through the gateway (issue 17, "What it must show").

Real processes (registry API, relay and worker; notifications; consular API, relay and
worker), real nginx in front of them, real PostgreSQL and Kafka: the citizen registers,
an officer of their embassy verifies their identity in the registry, the registry's
event reaches consular's applicants read model, the citizen applies for a consular card
and submits it, the officer reviews, approves and issues it, and every step is
published on ``consular.applications``.

Status emails: on this branch notifications does not consume ``consular.applications``
yet (another change adds the FR/EN templates), so the test asserts the events that
service will consume, read back from the broker; the mailbox assertion belongs here once
that change is merged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from diaspora_devstack.testing import read_topic, wait_until
from diaspora_events.topics import CONSULAR_APPLICATIONS
from diaspora_identity.testing import citizen, officer
from tests.conftest import GatewayFactory, LocalPlatform

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PERSON = {
    "given_name": "Akossiwa",
    "family_name": "Mensah",
    "date_of_birth": "1990-04-27",
    "country_of_residence": "FR",
    "email": "akossiwa.mensah@example.org",
    "phone": "+33612345678",
    "preferred_language": "fr",
}
CARD_ANSWERS = {
    "address_abroad": "12 rue des Lilas, 75011 Paris",
    "marital_status": "single",
    "emergency_contact_name": "Kodjo Mensah",
    "emergency_contact_phone": "+22890000000",
}


@pytest.fixture
async def platform(consular_platform: LocalPlatform) -> LocalPlatform:
    """The gateway fixture's platform, with consular running in it."""
    return consular_platform


async def verified_in_consular(database: str, member_id: str) -> bool:
    """Whether consular's applicants read model holds the person as identity-verified."""
    conn = await asyncpg.connect(database)
    try:
        level = await conn.fetchval(
            "SELECT identity_level FROM applicants WHERE member_id = $1::uuid", member_id
        )
    finally:
        await conn.close()
    return level is not None


def if_match(response: httpx.Response) -> Mapping[str, str]:
    return {"if-match": response.headers["etag"]}


async def test_a_citizen_gets_a_consular_card_through_the_gateway(
    platform: LocalPlatform, start_gateway: GatewayFactory
) -> None:
    assert platform.consular_database is not None
    gateway = await start_gateway()
    issuer = platform.issuer
    paris = issuer.headers(officer("fr-paris", subject="officer-paris-1"))

    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        # 1. The citizen registers (a token without a registry record yet).
        registered = await client.post(
            "/api/registry/members",
            json=PERSON,
            headers=issuer.headers(citizen("akossiwa-card")),
        )
        assert registered.status_code == 201, registered.text
        member_id = registered.json()["id"]
        me = issuer.headers(citizen("akossiwa-card", member_id=member_id))

        # 2. An officer of the embassy of her jurisdiction sees her passport.
        today = datetime.now(UTC).date()
        verified = await client.post(
            f"/api/registry/members/{member_id}/identity-verifications",
            json={
                "method": "document_in_person",
                "document_type": "passport",
                "document_number": "TG1234567",
                "document_expires_on": str(today + timedelta(days=800)),
                "seen_on": str(today),
            },
            headers=paris,
        )
        assert verified.status_code == 201, verified.text
        assert verified.json()["identity"]["level"] == "in_person"

        # 3. The registry's event reaches consular (registry relay -> Kafka -> worker).
        await wait_until(
            lambda: verified_in_consular(platform.consular_database or "", member_id),
            # Generous: the worker may still be joining its group on a busy machine.
            timeout=120,
            message="the identity verification in consular's read model",
        )

        # 4. She applies for a consular card and submits it.
        draft = await client.post(
            "/api/consular/applications",
            json={"service_type": "consular_card", "answers": CARD_ANSWERS},
            headers={**me, "idempotency-key": "card-1"},
        )
        assert draft.status_code == 201, draft.text
        application_id = draft.json()["id"]
        assert draft.json()["status"] == "draft"
        submitted = await client.post(
            f"/api/consular/applications/{application_id}/transitions",
            json={"action": "submit"},
            headers={**me, **if_match(draft)},
        )
        assert submitted.status_code == 200, submitted.text
        assert submitted.json()["status"] == "submitted"
        assert submitted.json()["embassy_id"] == "fr-paris"
        assert submitted.json()["due_at"] is not None

        # 5. The officer finds it in the embassy's queue, reviews, approves and issues it.
        queue = await client.get(
            "/api/consular/applications",
            params={"status": "submitted", "assigned": "none"},
            headers=paris,
        )
        assert queue.status_code == 200, queue.text
        assert [item["id"] for item in queue.json()["items"]] == [application_id]
        assert queue.json()["items"][0]["applicant"]["identity_verified"] is True
        current = submitted
        for action, status in (
            ("start_review", "under_review"),
            ("approve", "approved"),
            ("issue", "issued"),
        ):
            current = await client.post(
                f"/api/consular/applications/{application_id}/transitions",
                json={"action": action},
                headers={**paris, **if_match(current)},
            )
            assert current.status_code == 200, current.text
            assert current.json()["status"] == status
        reference = current.json()["reference"]
        assert reference.startswith("CC-")

        # 6. She follows it: status, reference and history, without the officer's name.
        mine = await client.get(f"/api/consular/applications/{application_id}", headers=me)
        assert mine.status_code == 200, mine.text
        view = mine.json()
        assert view["status"] == "issued"
        assert view["reference"] == reference
        assert [(h["action"], h["to_status"]) for h in view["history"]] == [
            ("create", "draft"),
            ("submit", "submitted"),
            ("start_review", "under_review"),
            ("approve", "approved"),
            ("issue", "issued"),
        ]
        assert all(h["actor_subject"] is None for h in view["history"])

        # An officer of another embassy does not find it.
        berlin = issuer.headers(officer("de-berlin"))
        elsewhere = await client.get(f"/api/consular/applications/{application_id}", headers=berlin)
        assert elsewhere.status_code == 404, elsewhere.text

    # 7. Every step is on consular.applications (what notifications turns into the status
    #    emails), published by consular's relay, keyed by the application, answers sealed.
    records = await read_topic(
        platform.kafka_bootstrap,
        platform.topic_prefix + CONSULAR_APPLICATIONS.name,
        expect=4,
        timeout=60,
    )
    events = [_event(r) for r in sorted(records, key=lambda r: (r.timestamp, r.offset))]
    assert [(kind, data.get("action"), data.get("to_status")) for kind, data, _ in events] == [
        ("consular.application.submitted", None, None),
        ("consular.application.status-changed", "start_review", "under_review"),
        ("consular.application.status-changed", "approve", "approved"),
        ("consular.application.status-changed", "issue", "issued"),
    ]
    assert {key for _, _, key in events} == {application_id}
    assert all(data["applicant_id"] == member_id for _, data, _ in events)
    assert events[-1][1]["reference"] == reference
    # Crypto-shredding: the answers travel sealed with the person's data key.
    assert all("Lilas" not in json.dumps(data) for _, data, _ in events)


def _event(record: Any) -> tuple[str, dict[str, Any], str]:
    headers = {k: v.decode() for k, v in record.headers}
    return headers["ce_type"], json.loads(record.value), record.key.decode()
