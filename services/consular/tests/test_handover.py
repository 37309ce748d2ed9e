"""The hand-over to the national documentation authority on the real PostgreSQL and Kafka:
an approved passport preparation publishes its package, read back from the topic, whose JWS
verifies with the published JWKS alone (a tampered one does not); the authority's answers
move the hand-over (and `produced` issues the application), a repeat changes nothing, an
answer out of order is 409 naming the allowed ones; only the authority's client answers
(403 otherwise), another embassy's officer gets 404, a malformed answer 422."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import jwt
import pytest
from consular_testing import (
    answers_for,
    known_applicant,
    new_member_id,
    pay_fee,
    profile,
    upload_required_documents,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from consular.bootstrap import bootstrap
from consular.handover import domain
from consular.handover.tables import handover_answers
from consular.resources import Consular
from consular.tables import outbox
from diaspora_devstack.testing import publish_outbox, read_topic
from diaspora_events.topics import CONSULAR_APPLICATIONS
from diaspora_identity.testing import (
    LocalIssuer,
    Persona,
    citizen,
    coordinator,
    officer,
    service_account,
)

pytestmark = pytest.mark.integration

AUTHORITY = service_account(domain.AUTHORITY_CLIENT)
SCHEMA = Path(__file__).parents[3] / "docs" / "schemas" / "consular-handover-package.schema.json"


@pytest.fixture
async def consular(make_settings: Any, tmp_path: Path) -> AsyncIterator[Consular]:
    """The service with a signing key of this test's own."""
    service = bootstrap(make_settings(credential_signing_key_file=tmp_path / "signing.pem"))
    yield service
    await service.close()


class Caller:
    def __init__(self, http: httpx.AsyncClient, issuer: LocalIssuer, persona: Persona) -> None:
        self.http = http
        self.persona = persona
        self.headers = issuer.headers(persona)

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post(path, json=body, headers=self.headers)

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path, headers=self.headers)

    async def act(self, app_id: str, action: str) -> Any:
        return ok(await self.post(f"/applications/{app_id}/transitions", {"action": action}))


def ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


async def approved(
    consular: Consular,
    http: httpx.AsyncClient,
    issuer: LocalIssuer,
    service_type: str = "passport_preparation",
) -> tuple[Caller, str]:
    """A verified Paris applicant's application, submitted, paid and approved."""
    member_id = new_member_id()
    await known_applicant(consular, member_id, profile(verified=True))
    person = Caller(http, issuer, citizen(member_id=member_id))
    app_id = ok(await person.post("/applications", {"service_type": service_type}), 201)["id"]
    await upload_required_documents(http, person.headers, app_id, service_type)
    ok(
        await person.post(
            f"/applications/{app_id}/transitions",
            {"action": "submit", "answers": answers_for(service_type)},
        )
    )
    paris = Caller(http, issuer, officer("fr-paris"))
    await paris.act(app_id, "start_review")
    await pay_fee(http, paris.headers, app_id)
    await paris.act(app_id, "approve")
    return person, app_id


async def published(consular: Consular, topic_prefix: str, expect: int) -> list[tuple[str, Any]]:
    await publish_outbox(
        consular.engine,
        outbox,
        kafka_bootstrap=consular.settings.kafka_bootstrap,
        topic_prefix=topic_prefix,
        client_id="consular-test-relay",
    )
    records = await read_topic(
        consular.settings.kafka_bootstrap, topic_prefix + CONSULAR_APPLICATIONS.name, expect=expect
    )
    records.sort(key=lambda r: (r.timestamp, r.offset))
    return [(dict(r.headers)["ce_type"].decode(), json.loads(r.value)) for r in records]


async def outbox_count(consular: Consular, event_type: str) -> int:
    async with consular.sessions() as session:
        found: int = (
            await session.execute(
                select(func.count()).select_from(outbox).where(outbox.c.event_type == event_type)
            )
        ).scalar_one()
    return found


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_an_approved_passport_preparation_sends_a_package_that_verifies_with_the_jwks(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer, topic_prefix: str
) -> None:
    person, app_id = await approved(consular, http, identity_provider)

    # submitted, status-changed x2, payment.recorded, handover.sent
    found = await published(consular, topic_prefix, expect=5)
    sent = [e for t, e in found if t == "consular.handover.sent"]
    assert len(sent) == 1
    event = sent[0]
    assert event["application_id"] == app_id
    assert event["service_type"] == "passport_preparation"
    assert event["embassy_id"] == "fr-paris"

    # Verified with the published key set alone (as the authority would, offline).
    jwks = ok(await http.get("/credentials/jwks.json"))
    package = domain.verify_package(event["package"], jwks, audience=domain.AUTHORITY_CLIENT)
    assert jwt.get_unverified_header(event["package"])["typ"] == domain.PACKAGE_TYP
    assert package["jti"] == event["handover_id"]
    assert package["format"] == domain.FORMAT
    assert package["application"]["id"] == app_id
    assert package["application"]["service_type"] == "passport_preparation"
    assert package["application"]["answers"] == answers_for("passport_preparation")
    assert package["application"]["reference"].startswith("PP-")
    assert package["applicant"]["member_id"] == str(person.persona.member_id)
    assert (package["applicant"]["given_name"], package["applicant"]["family_name"]) == (
        "Akossiwa",
        "Mensah",
    )
    assert package["applicant"]["date_of_birth"] == "1990-04-27"
    assert package["applicant"]["identity_verification"]["level"] == "in_person"
    assert package["required_documents"] == [
        "birth_certificate",
        "nationality_certificate",
        "photo",
    ]
    # The uploaded documents, each with its digest and a download reference.
    uploaded = ok(
        await person.http.get(f"/applications/{app_id}/documents", headers=person.headers)
    )
    listed = uploaded["items"] if isinstance(uploaded, dict) else uploaded
    assert sorted((d["kind"], d["sha256"]) for d in package["documents"]) == sorted(
        (d["kind"], d["sha256"]) for d in listed
    )
    assert [d["kind"] for d in sorted(package["documents"], key=lambda d: d["kind"])] == [
        "birth_certificate",
        "nationality_certificate",
        "photo",
    ]
    assert all(d["download"]["reference"] for d in package["documents"])
    assert package["answer_to"] == f"/handovers/{event['handover_id']}/answers"
    # The documented format (docs/consular.md, "Hand-over package").
    jsonschema.validate(package, json.loads(SCHEMA.read_text(encoding="utf-8")))

    # A changed payload fails; so does a package signed by another key under the same kid.
    header, payload, signature = event["package"].split(".")
    changed = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    changed["applicant"]["family_name"] = "Autre"
    tampered = ".".join([header, _b64(json.dumps(changed).encode()), signature])
    with pytest.raises(domain.PackageInvalid):
        domain.verify_package(tampered, jwks, audience=domain.AUTHORITY_CLIENT)
    forged = jwt.encode(
        changed,
        Ed25519PrivateKey.generate(),
        algorithm="EdDSA",
        headers={"kid": jwt.get_unverified_header(event["package"])["kid"]},
    )
    with pytest.raises(domain.PackageInvalid):
        domain.verify_package(forged, jwks, audience=domain.AUTHORITY_CLIENT)
    with pytest.raises(domain.PackageInvalid):
        domain.verify_package(event["package"], jwks, audience="someone-else")

    # Who reads it: the applicant (status, not the package), the embassy, the authority.
    mine = ok(await person.get(f"/applications/{app_id}/handover"))
    assert (mine["status"], mine["package"]) == ("sent", None)
    authority = Caller(http, identity_provider, AUTHORITY)
    assert (
        ok(await authority.get(f"/handovers/{event['handover_id']}"))["package"]
        == (event["package"])
    )
    berlin = Caller(http, identity_provider, officer("de-berlin"))
    assert (await berlin.get(f"/handovers/{event['handover_id']}")).status_code == 404
    assert (await berlin.get(f"/applications/{app_id}/handover")).status_code == 404


async def test_the_authoritys_answers_move_the_handover_and_issue_the_application(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer, topic_prefix: str
) -> None:
    person, app_id = await approved(consular, http, identity_provider, "national_id_preparation")
    handover = ok(await person.get(f"/applications/{app_id}/handover"))
    path = f"/handovers/{handover['id']}/answers"
    authority = Caller(http, identity_provider, AUTHORITY)

    # Out of order: produced before accepted.
    early = await authority.post(path, {"answer": "produced", "document_number": "CNI-0001"})
    assert early.status_code == 409, early.text
    assert (early.json()["status_now"], early.json()["allowed"]) == (
        "sent",
        ["accepted", "rejected"],
    )

    accepted = ok(await authority.post(path, {"answer": "accepted"}))
    assert (accepted["status"], accepted["allowed_answers"]) == (
        "accepted",
        ["produced", "rejected"],
    )
    # The same answer again: 200, nothing new (no second answer row, no second event).
    again = ok(await authority.post(path, {"answer": "accepted"}))
    assert again["status"] == "accepted"
    assert len(again["answers"]) == 1
    assert await outbox_count(consular, "consular.handover.answered") == 1

    seen = ok(await person.get(f"/applications/{app_id}"))
    assert seen["status"] == "approved"
    assert seen["history"][-1]["action"] == "handover_accepted"

    produced = ok(await authority.post(path, {"answer": "produced", "document_number": "CNI-7"}))
    assert (produced["status"], produced["document_number"]) == ("produced", "CNI-7")
    repeat = ok(await authority.post(path, {"answer": "produced", "document_number": "CNI-7"}))
    assert len(repeat["answers"]) == 2
    other = await authority.post(path, {"answer": "produced", "document_number": "CNI-8"})
    assert other.status_code == 409
    assert other.json()["allowed"] == []
    late = await authority.post(path, {"answer": "rejected", "reason": "late"})
    assert late.status_code == 409

    issued = ok(await person.get(f"/applications/{app_id}"))
    assert issued["status"] == "issued"
    assert issued["history"][-1]["action"] == "record_production"
    assert issued["history"][-1]["actor_role"] == "authority"

    # The person hears of each through the status-mail path: status-changed events.
    found = await published(consular, topic_prefix, expect=9)
    changes = [
        (e["action"], e["to_status"], e["actor_role"])
        for t, e in found
        if t == "consular.application.status-changed"
    ]
    assert changes[-2:] == [
        ("handover_accepted", "approved", "authority"),
        ("record_production", "issued", "authority"),
    ]
    answered = [e for t, e in found if t == "consular.handover.answered"]
    assert [(e["answer"], e["from_status"]) for e in answered] == [
        ("accepted", "sent"),
        ("produced", "accepted"),
    ]
    assert answered[1]["document_number"] == "CNI-7"
    async with consular.sessions() as session:
        rows = (await session.execute(select(func.count()).select_from(handover_answers))).scalar()
    assert rows == 2


async def test_a_rejection_and_who_may_answer(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    person, app_id = await approved(consular, http, identity_provider)
    handover = ok(await person.get(f"/applications/{app_id}/handover"))
    path = f"/handovers/{handover['id']}/answers"

    # Only the authority's client answers: other roles, and other service clients, 403.
    for persona in (
        officer("fr-paris"),
        coordinator(),
        person.persona,
        service_account("registry"),
    ):
        refused = await Caller(http, identity_provider, persona).post(path, {"answer": "accepted"})
        assert refused.status_code == 403, (persona, refused.text)

    authority = Caller(http, identity_provider, AUTHORITY)
    for malformed in (
        {"answer": "rejected"},
        {"answer": "produced"},
        {"answer": "accepted", "document_number": "P-1"},
        {"answer": "lost"},
        {"answer": "accepted", "extra": 1},
        {},
    ):
        answer = await authority.post(path, malformed)
        assert answer.status_code == 422, (malformed, answer.text)
    unknown = await authority.post(
        "/handovers/00000000-0000-0000-0000-000000000000/answers", {"answer": "accepted"}
    )
    assert unknown.status_code == 404

    rejected = ok(await authority.post(path, {"answer": "rejected", "reason": "Photo floue."}))
    assert (rejected["status"], rejected["reason"]) == ("rejected", "Photo floue.")
    ok(await authority.post(path, {"answer": "rejected", "reason": "Photo floue."}))
    assert await outbox_count(consular, "consular.handover.answered") == 1
    seen = ok(await person.get(f"/applications/{app_id}"))
    assert (seen["status"], seen["history"][-1]["action"]) == ("approved", "handover_rejected")
    assert seen["history"][-1]["reason"] == "Photo floue."

    # Other service types send no package.
    holder, card = await approved(consular, http, identity_provider, "consular_card")
    assert (await holder.get(f"/applications/{card}/handover")).status_code == 404
    assert await outbox_count(consular, "consular.handover.sent") == 1
