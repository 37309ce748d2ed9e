"""Issued credentials end to end on the real PostgreSQL and Kafka: an application issued
gives a credential row and its event in the same transaction; the token verifies with the
public JWKS alone; download is for the holder and the issuing embassy's officers only
(anyone else 404); revocation (audited, event) reaches the public list (ETag) and the
verification endpoint and page; forged tokens are told apart."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import jwt
import pypdfium2
import pytest
import zxingcpp
from consular_testing import (
    answers_for,
    known_applicant,
    new_member_id,
    pay_fee,
    profile,
    publish,
    upload_required_documents,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from consular.bootstrap import bootstrap
from consular.credentials.tables import credentials
from consular.entrypoints.worker import run as run_worker
from consular.members.consumer import CONSUMER_NAME
from consular.resources import Consular
from consular.tables import audit_log, outbox
from diaspora_devstack.testing import publish_outbox, read_topic, wait_consumed
from diaspora_events.contracts.registry import MemberMergedV1, MemberUpdatedV1
from diaspora_events.topics import CONSULAR_APPLICATIONS, REGISTRY_MEMBERS
from diaspora_identity.testing import (
    LocalIssuer,
    Persona,
    admin,
    citizen,
    coordinator,
    officer,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def consular(make_settings: Any, tmp_path: Path) -> AsyncIterator[Consular]:
    """The service with a signing key of this test's own (created as in development)."""
    service = bootstrap(make_settings(credential_signing_key_file=tmp_path / "signing.pem"))
    yield service
    await service.close()


class Caller:
    def __init__(self, http: httpx.AsyncClient, issuer: LocalIssuer, persona: Persona) -> None:
        self.http = http
        self.persona = persona
        self.headers = issuer.headers(persona)

    async def act(self, application_id: str, action: str, **body: Any) -> dict[str, Any]:
        answer = await self.http.post(
            f"/applications/{application_id}/transitions",
            json={"action": action, **body},
            headers=self.headers,
        )
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(path, headers=self.headers, **kwargs)

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post(path, json=body, headers=self.headers)


async def issued(
    http: httpx.AsyncClient,
    issuer: LocalIssuer,
    applicant: Caller,
    service_type: str,
    embassy: str,
) -> dict[str, Any]:
    """An application taken through to `issued` by its applicant and an officer."""
    created = await applicant.post("/applications", {"service_type": service_type})
    assert created.status_code == 201, created.text
    app_id = created.json()["id"]
    staff = Caller(http, issuer, officer(embassy))
    await upload_required_documents(http, applicant.headers, app_id, service_type)
    await applicant.act(app_id, "submit", answers=answers_for(service_type))
    await staff.act(app_id, "start_review")
    await pay_fee(http, staff.headers, app_id)
    await staff.act(app_id, "approve")
    return await staff.act(app_id, "issue")


async def member(consular: Consular, http: httpx.AsyncClient, issuer: LocalIssuer) -> Caller:
    member_id = new_member_id()
    await known_applicant(consular, member_id, profile(verified=True))
    return Caller(http, issuer, citizen(member_id=member_id))


def ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


async def credential_of(caller: Caller, application_id: str) -> dict[str, Any]:
    items = ok(await caller.get("/credentials", params={"application_id": application_id}))["items"]
    assert len(items) == 1, items
    found: dict[str, Any] = items[0]
    return found


def qr_codes(pdf: bytes) -> list[str]:
    document = pypdfium2.PdfDocument(pdf)
    try:
        image = document[0].render(scale=200 / 72).to_pil()
    finally:
        document.close()
    return [code.text for code in zxingcpp.read_barcodes(image)]


async def events(consular: Consular, topic_prefix: str, expect: int) -> list[tuple[str, Any]]:
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
    return [
        (dict((k, v.decode()) for k, v in r.headers)["ce_type"], json.loads(r.value))
        for r in records
    ]


async def test_an_issued_consular_card_is_a_signed_credential_with_its_event(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer, topic_prefix: str
) -> None:
    person = await member(consular, http, identity_provider)
    application = await issued(http, identity_provider, person, "consular_card", "fr-paris")
    assert application["status"] == "issued"

    # The row, made in the transaction.
    async with consular.sessions() as session:
        rows = (
            (
                await session.execute(
                    select(credentials).where(
                        credentials.c.application_id == UUID(application["id"])
                    )
                )
            )
            .mappings()
            .all()
        )
    assert len(rows) == 1
    row = rows[0]
    assert row["credential_type"] == "consular_card"
    assert row["holder_id"] == person.persona.member_id
    assert row["embassy_id"] == "fr-paris"
    assert row["expires_at"] - row["issued_at"] == timedelta(days=5 * 365)

    # The token verifies with the public JWKS (fetched without a bearer token) alone.
    published = (await http.get("/credentials/jwks.json")).text
    key_set = jwt.PyJWKSet.from_json(published)
    header = jwt.get_unverified_header(row["token"])
    assert header["alg"] == "EdDSA"
    assert header["kid"] == row["kid"]
    claims = jwt.decode(row["token"], key_set[header["kid"]].key, algorithms=["EdDSA"])
    assert claims["jti"] == str(row["id"])
    assert claims["holder"] == {
        "given_name": "Akossiwa",
        "family_name": "Mensah",
        "date_of_birth": "1990-04-27",
    }
    assert claims["issuing_embassy"] == "fr-paris"
    assert claims["application_reference"] == application["reference"]
    assert claims["credential_type"] == "consular_card"

    # The event, after the status change, on the application's partition (the
    # fee's receipt is one of the 8).
    found = await events(consular, topic_prefix, expect=8)
    types = [t for t, _ in found]
    assert types[-2:] == ["consular.application.status-changed", "consular.credential.issued"]
    issued_event = found[-1][1]
    assert issued_event["credential_id"] == str(row["id"])
    assert issued_event["application_id"] == application["id"]
    assert issued_event["kid"] == row["kid"]
    assert "holder" not in issued_event
    assert "token" not in issued_event


async def test_an_e_visa_credential_carries_the_visitors_passport_and_other_types_none(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    visitor = Caller(http, identity_provider, citizen())
    application = await issued(http, identity_provider, visitor, "e_visa", "tg-lome")
    credential = await credential_of(visitor, application["id"])
    assert credential["credential_type"] == "e_visa"
    assert credential["holder_id"] is None
    token = (await visitor.get(f"/credentials/{credential['id']}/token")).text
    verdict = ok(await http.post("/credentials/verify", json={"token": token}))
    assert verdict["status"] == "valid", verdict
    assert verdict["holder"] == {
        "given_name": "Lena",
        "family_name": "Schmidt",
        "date_of_birth": "1992-06-30",
        "passport_number": "X1234567",
        "nationality": "DE",
    }
    expires = datetime.fromisoformat(verdict["expires_at"])
    issued_at = datetime.fromisoformat(verdict["issued_at"])
    assert expires - issued_at == timedelta(days=90)

    person = await member(consular, http, identity_provider)
    other = await issued(http, identity_provider, person, "laissez_passer", "fr-paris")
    listed = ok(await person.get("/credentials", params={"application_id": other["id"]}))
    assert listed["items"] == []


async def test_only_the_holder_and_the_issuing_embassy_download_it(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    person = await member(consular, http, identity_provider)
    application = await issued(http, identity_provider, person, "consular_card", "fr-paris")
    credential = await credential_of(person, application["id"])
    pdf_path = f"/credentials/{credential['id']}/document.pdf"
    token_path = f"/credentials/{credential['id']}/token"

    # The holder: the PDF, whose QR code is the token, which verifies.
    answer = await person.get(pdf_path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    token = (await person.get(token_path)).text
    assert qr_codes(answer.content) == [token]
    assert ok(await http.post("/credentials/verify", json={"token": token}))["status"] == "valid"

    # An officer of the issuing embassy too, and the download is audited.
    paris = Caller(http, identity_provider, officer("fr-paris"))
    assert (await paris.get(pdf_path)).status_code == 200
    async with consular.sessions() as session:
        audited = (
            await session.execute(
                select(func.count())
                .select_from(audit_log)
                .where(
                    audit_log.c.resource == "consular_credential",
                    audit_log.c.action == "download",
                    audit_log.c.actor_subject == paris.persona.subject,
                    audit_log.c.record_id == person.persona.member_id,
                )
            )
        ).scalar_one()
    assert audited == 1

    # Anyone else: as if it did not exist.
    stranger = await member(consular, http, identity_provider)
    berlin = Caller(http, identity_provider, officer("de-berlin"))
    for caller in (stranger, berlin):
        for path in (pdf_path, token_path, f"/credentials/{credential['id']}"):
            answer = await caller.get(path)
            assert answer.status_code == 404, (caller.persona.subject, path, answer.text)
        assert ok(await caller.get("/credentials"))["items"] == []
    # Coordinators see it exists, but do not download the holder's document.
    ministry = Caller(http, identity_provider, coordinator())
    assert (await ministry.get(f"/credentials/{credential['id']}")).status_code == 200
    assert (await ministry.get(pdf_path)).status_code == 403
    # Without a token: 401.
    assert (await http.get(pdf_path)).status_code == 401


async def test_revocation_reaches_the_list_the_verification_and_the_topic(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer, topic_prefix: str
) -> None:
    person = await member(consular, http, identity_provider)
    application = await issued(http, identity_provider, person, "consular_card", "fr-paris")
    credential = await credential_of(person, application["id"])
    token = (await person.get(f"/credentials/{credential['id']}/token")).text
    revocation = f"/credentials/{credential['id']}/revocation"

    before = await http.get("/credentials/revocations")
    assert before.status_code == 200
    assert credential["id"] not in {e["id"] for e in before.json()["revoked"]}
    etag = before.headers["etag"]
    unchanged = await http.get("/credentials/revocations", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304

    # Who may revoke: not the holder (403), not another embassy (404); a reason is needed.
    assert (await person.post(revocation, {"reason": "lost"})).status_code == 403
    berlin = Caller(http, identity_provider, officer("de-berlin"))
    assert (await berlin.post(revocation, {"reason": "lost card"})).status_code == 404
    paris = Caller(http, identity_provider, officer("fr-paris"))
    assert (await paris.post(revocation, {})).status_code == 422
    revoked = ok(await paris.post(revocation, {"reason": "Carte déclarée perdue"}))
    assert revoked["revoked_at"] is not None
    assert revoked["revocation_reason"] == "Carte déclarée perdue"
    again = await Caller(http, identity_provider, admin()).post(revocation, {"reason": "again"})
    assert again.status_code == 409

    # The public list changed (new ETag), and names the credential (no reason shown).
    after = await http.get("/credentials/revocations", headers={"If-None-Match": etag})
    assert after.status_code == 200
    assert after.headers["etag"] != etag
    assert [e["id"] for e in after.json()["revoked"]] == [credential["id"]]
    assert "Carte" not in after.text
    # Its signed copy verifies with the JWKS, offline.
    signed = (await http.get("/credentials/revocations.jwt")).text
    key_set = jwt.PyJWKSet.from_json((await http.get("/credentials/jwks.json")).text)
    listed = jwt.decode(
        signed, key_set[jwt.get_unverified_header(signed)["kid"]].key, algorithms=["EdDSA"]
    )
    assert listed["revoked"] == [credential["id"]]

    verdict = ok(await http.post("/credentials/verify", json={"token": token}))
    assert verdict["status"] == "revoked", verdict
    page = await http.get("/credentials/verify", params={"token": token})
    assert page.status_code == 200
    assert 'data-status="revoked"' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]

    # Audited against the holder, and published.
    async with consular.sessions() as session:
        actions = (
            await session.execute(
                select(audit_log.c.action).where(
                    audit_log.c.resource == "consular_credential",
                    audit_log.c.actor_subject == paris.persona.subject,
                    audit_log.c.record_id == person.persona.member_id,
                )
            )
        ).scalars()
        assert list(actions) == ["revoke"]
    found = await events(consular, topic_prefix, expect=9)
    assert found[-1][0] == "consular.credential.revoked"
    assert found[-1][1]["credential_id"] == credential["id"]
    assert found[-1][1]["reason"] == "Carte déclarée perdue"
    assert found[-1][1]["actor_role"] == "embassy_officer"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_the_verification_endpoint_and_page_tell_forgeries_apart(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    person = await member(consular, http, identity_provider)
    application = await issued(http, identity_provider, person, "consular_card", "fr-paris")
    credential = await credential_of(person, application["id"])
    token = (await person.get(f"/credentials/{credential['id']}/token")).text

    async def verdict(candidate: str) -> dict[str, Any]:
        result: dict[str, Any] = ok(
            await http.post("/credentials/verify", json={"token": candidate})
        )
        return result

    genuine = await verdict(token)
    assert genuine["status"] == "valid"
    assert genuine["holder"]["family_name"] == "Mensah"
    page = await http.get("/credentials/verify", params={"token": token})
    assert 'data-status="valid"' in page.text
    assert "Mensah" in page.text

    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["holder"]["family_name"] = "<script>alert(1)</script>"
    tampered = ".".join([header, _b64(json.dumps(claims).encode()), signature])
    forged = await verdict(tampered)
    assert forged["status"] == "forged"
    assert "bad signature" in forged["reason"]
    assert forged["holder"] is None
    page = await http.get("/credentials/verify", params={"token": tampered})
    assert 'data-status="forged"' in page.text
    assert "<script>" not in page.text

    # Signed by another key: with its own kid, or the ministry's.
    forger = Ed25519PrivateKey.generate()
    other_key = jwt.encode(claims, forger, algorithm="EdDSA", headers={"kid": "forger"})
    assert (await verdict(other_key))["status"] == "forged"
    borrowed = jwt.encode(claims, forger, algorithm="EdDSA", headers={"kid": credential["kid"]})
    assert (await verdict(borrowed))["status"] == "forged"
    # Malformed input: a 422 problem, not a 500.
    bad = await http.post("/credentials/verify", json={"token": "not a token"})
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    pasted = await http.get("/credentials/verify", params={"token": "<b>not a token</b>"})
    assert pasted.status_code == 422
    half = await http.get("/credentials/verify", params={"token": f"  {header}.{payload}\n"})
    assert half.status_code == 200
    assert 'data-status="forged"' in half.text

    # Expired: the stored token of a credential whose validity has passed.
    past = datetime.now(UTC) - timedelta(days=3)
    expired_claims = {
        **jwt.decode(token, options={"verify_signature": False}),
        "exp": int(past.timestamp()),
    }
    assert consular.credential_keys is not None
    expired = consular.credential_keys.sign(expired_claims)
    assert (await verdict(expired))["status"] == "expired"


async def test_the_card_carries_the_registry_date_of_birth_and_follows_a_merge(
    consular: Consular,
    http: httpx.AsyncClient,
    identity_provider: LocalIssuer,
    make_settings: Any,
    topic_prefix: str,
    kafka_bootstrap: str,
) -> None:
    """On the real broker: the worker (which holds no signing key) keeps the applicant's
    date of birth from registry events, the card signs it, and a merge hands the card to
    the surviving record."""
    topic = topic_prefix + REGISTRY_MEMBERS.name
    group = topic_prefix + CONSUMER_NAME
    absorbed, survivor = new_member_id(), new_member_id()
    at = datetime.now(UTC) - timedelta(hours=1)
    worker_service = bootstrap(make_settings(), signing=False)
    assert worker_service.credential_keys is None
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(worker_service, stop))
    try:
        await publish(
            kafka_bootstrap,
            topic,
            *(
                MemberUpdatedV1(
                    member_id=member_id,
                    updated_at=at,
                    changed_fields=["profile"],
                    profile=profile(verified=True),
                )
                for member_id in (absorbed, survivor)
            ),
        )
        await wait_consumed(kafka_bootstrap, group, [topic], timeout=60)

        person = Caller(http, identity_provider, citizen(member_id=absorbed))
        application = await issued(http, identity_provider, person, "consular_card", "fr-paris")
        credential = await credential_of(person, application["id"])
        token = (await person.get(f"/credentials/{credential['id']}/token")).text
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["holder"]["date_of_birth"] == "1990-04-27"

        await publish(
            kafka_bootstrap,
            topic,
            MemberMergedV1(
                member_id=absorbed,
                survivor_id=survivor,
                merged_at=at + timedelta(minutes=1),
                case_id=new_member_id(),
            ),
        )
        await wait_consumed(kafka_bootstrap, group, [topic], timeout=60)
    finally:
        stop.set()
        await asyncio.wait_for(worker, timeout=30)

    heir = Caller(http, identity_provider, citizen(member_id=survivor))
    assert (await credential_of(heir, application["id"]))["holder_id"] == str(survivor)
    assert (await heir.get(f"/credentials/{credential['id']}/document.pdf")).status_code == 200
    gone = Caller(http, identity_provider, citizen(member_id=absorbed))
    assert (await gone.get(f"/credentials/{credential['id']}/document.pdf")).status_code == 404
