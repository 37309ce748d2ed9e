"""A citizen's consular card, end to end through the gateway (issue 17, "What it must show").

Real processes (registry API, relay and worker; notifications; consular API, relay and
worker), real nginx in front of them, real PostgreSQL and Kafka: the citizen registers,
an officer of their embassy verifies their identity in the registry, the registry's
event reaches consular's applicants read model, the citizen applies for a consular card,
uploads the documents it requires (checked by content; sizes the gateway lets through)
and submits it, the officer reviews, approves and issues it, and every step is
published on ``consular.applications``.

She also confirms her email address (the verification email's link), books an
appointment on a slot of the embassy's published template, receives the status emails
(submitted, approved, issued; in French, her language), downloads her card's PDF and
token, and the QR code on the PDF decodes to the token, which the public verification
endpoint says is valid (and a tampered copy forged).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pypdfium2
import pytest
import zxingcpp
from notifications_testing import verification_token

from diaspora_devstack.testing import read_topic, wait_until
from diaspora_documents import testing as samples
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


def to(platform: LocalPlatform, address: str) -> list[Any]:
    """The messages the mailbox received for ``address``, in arrival order."""
    return [m for m in platform.mailbox.messages if m.recipients == (address,)]


def read_qr_codes(pdf: bytes) -> list[str]:
    """The texts of the QR codes on the PDF's first page, rendered at 200 dpi."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        image = document[0].render(scale=200 / 72).to_pil()
    finally:
        document.close()
    return [code.text for code in zxingcpp.read_barcodes(image)]


def tampered(token: str) -> str:
    """The token with its payload altered (another application reference), its
    signature kept: what a forger who edits a card's QR code produces."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["application_reference"] = "CC-2026-0000000000"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert forged != payload
    return f"{header}.{forged}.{signature}"


def slot_template(today: Any) -> dict[str, Any]:
    """Paris: weekday mornings, two seats a slot, valid for a year from today."""
    mornings = [{"start": "09:00", "end": "12:00"}]
    return {
        "timezone": "Europe/Paris",
        "slot_minutes": 30,
        "capacity": 2,
        "weekly_hours": {day: mornings for day in ("mon", "tue", "wed", "thu", "fri")},
        "closures": [],
        "valid_from": str(today),
        "valid_to": str(today + timedelta(days=365)),
        "horizon_days": 180,
    }


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
        address = PERSON["email"]

        # 1b. She confirms her email address with the link of the verification email
        #     (until then notifications sends her nothing else); the welcome follows.
        await wait_until(
            lambda: len(to(platform, address)) == 1, timeout=60, message="the verification"
        )
        confirmed = await client.post(
            "/api/notifications/contacts/email/confirm",
            json={"token": verification_token(to(platform, address)[0].text())},
        )
        assert confirmed.status_code == 200, confirmed.text
        await wait_until(lambda: len(to(platform, address)) == 2, timeout=60, message="welcome")

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
        # ... and notifications, which tells her (in French) that her identity is verified.
        await wait_until(
            lambda: len(to(platform, address)) == 3, timeout=60, message="identity email"
        )
        assert to(platform, address)[2].subject.startswith("Akossiwa, votre identité est vérifiée")
        before_status = len(platform.mailbox.messages)

        # 4. She applies for a consular card, uploads its documents and submits it.
        draft = await client.post(
            "/api/consular/applications",
            json={"service_type": "consular_card", "answers": CARD_ANSWERS},
            headers={**me, "idempotency-key": "card-1"},
        )
        assert draft.status_code == 201, draft.text
        application_id = draft.json()["id"]
        assert draft.json()["status"] == "draft"
        # Submitting without the required documents is refused, naming them ...
        refused = await client.post(
            f"/api/consular/applications/{application_id}/transitions",
            json={"action": "submit"},
            headers={**me, **if_match(draft)},
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["missing"] == ["identity_document", "photo", "proof_of_residence"]
        # ... so she uploads each one (a scan, a photo) through the gateway: nginx takes
        # bodies of up to 11 MB on these routes (the rest of the API: 1 MB).
        uploads = {
            "identity_document": ("passport.pdf", samples.pdf(1), "application/pdf"),
            "photo": ("photo.jpg", samples.image("jpeg", 1200, 1600), "image/jpeg"),
            "proof_of_residence": (
                "edf.pdf",
                samples.pdf(1) + b"%" * (2 * 1024 * 1024),
                "application/pdf",
            ),
        }
        for kind, file in uploads.items():
            uploaded = await client.post(
                f"/api/consular/applications/{application_id}/documents",
                files={"file": file},
                data={"kind": kind},
                headers=me,
            )
            assert uploaded.status_code == 201, uploaded.text
        documents = await client.get(
            f"/api/consular/applications/{application_id}/documents", headers=me
        )
        assert sorted(d["kind"] for d in documents.json()["items"]) == sorted(uploads)
        photo_id = next(d["id"] for d in documents.json()["items"] if d["kind"] == "photo")
        photo = await client.get(
            f"/api/consular/applications/{application_id}/documents/{photo_id}", headers=me
        )
        assert photo.status_code == 200
        assert photo.content == uploads["photo"][1]
        # A renamed executable is refused by its content.
        executable = await client.post(
            f"/api/consular/applications/{application_id}/documents",
            files={"file": ("photo.jpg", samples.PE, "image/jpeg")},
            data={"kind": "photo"},
            headers=me,
        )
        assert executable.status_code == 415, executable.text
        submitted = await client.post(
            f"/api/consular/applications/{application_id}/transitions",
            json={"action": "submit"},
            headers={**me, **if_match(draft)},
        )
        assert submitted.status_code == 200, submitted.text
        assert submitted.json()["status"] == "submitted"
        assert submitted.json()["embassy_id"] == "fr-paris"
        assert submitted.json()["due_at"] is not None
        # The Paris officer reads her photo (audited); an officer of Berlin cannot.
        photo_path = f"/api/consular/applications/{application_id}/documents/{photo_id}"
        assert (await client.get(photo_path, headers=paris)).content == uploads["photo"][1]
        berlin = issuer.headers(officer("de-berlin"))
        assert (await client.get(photo_path, headers=berlin)).status_code == 404

        # 4b. The Paris officer publishes the embassy's slot template; she lists the open
        #     slots (no token needed), books the first for her application and sees it.
        template = await client.put(
            "/api/consular/embassies/fr-paris/slot-template",
            json=slot_template(today),
            headers=paris,
        )
        assert template.status_code == 200, template.text
        slots = await client.get("/api/consular/embassies/fr-paris/slots")
        assert slots.status_code == 200, slots.text
        assert slots.json()["timezone"] == "Europe/Paris"
        open_slots = [s for s in slots.json()["items"] if s["available"] > 0]
        assert open_slots, slots.text
        slot = open_slots[0]
        booked = await client.post(
            "/api/consular/appointments",
            json={"application_id": application_id, "slot_start": slot["start"]},
            headers=me,
        )
        assert booked.status_code == 201, booked.text
        appointment_id = booked.json()["id"]
        assert booked.json()["status"] == "booked"
        mine_booked = await client.get("/api/consular/appointments", headers=me)
        assert mine_booked.status_code == 200, mine_booked.text
        assert [
            (a["id"], a["application_id"], a["status"], a["embassy_id"]) for a in mine_booked.json()
        ] == [(appointment_id, application_id, "booked", "fr-paris")]
        booked_start = datetime.fromisoformat(mine_booked.json()[0]["slot_start"])
        assert booked_start == datetime.fromisoformat(slot["start"])
        after = await client.get(
            "/api/consular/embassies/fr-paris/slots",
            params={"from": slot["local_start"][:10], "to": slot["local_start"][:10]},
        )
        assert after.status_code == 200, after.text
        (seat,) = [s for s in after.json()["items"] if s["start"] == slot["start"]]
        assert seat["available"] == slot["available"] - 1

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
            if action == "approve":
                # She paid the fee at the counter: the officer records it (an approval
                # needs it) and she gets a receipt number.
                paid = await client.post(
                    f"/api/consular/applications/{application_id}/payments",
                    json={
                        "method": "cash_at_embassy",
                        "payer_reference": "GUICHET-42",
                        "amount": "10000",
                        "currency": "XOF",
                    },
                    headers=paris,
                )
                assert paid.status_code == 201, paid.text
                receipt_number = paid.json()["receipt_number"]
                assert receipt_number.startswith("FR-PAR-")
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

        # 6b. The status emails reach her, in French: submitted, approved, issued (the
        #     review's start sends nothing).
        await wait_until(
            lambda: len(platform.mailbox.messages) >= before_status + 3,
            timeout=120,
            message="the three status emails",
        )
        status_mails = platform.mailbox.messages[before_status:]
        assert all(m.recipients == (address,) for m in status_mails)
        assert sorted(m.subject for m in status_mails) == sorted(
            [
                "Demande de carte consulaire reçue",
                "Votre demande de carte consulaire est acceptée",
                "Votre carte consulaire est délivré(e)",
            ]
        )
        texts = {m.subject: " ".join(m.text().split()) for m in status_mails}
        assert application_id in texts["Demande de carte consulaire reçue"]
        assert reference in texts["Votre demande de carte consulaire est acceptée"]

        # 6c. Her card: the PDF and the token, through the gateway; the QR code on the
        #     PDF is the token, which the public endpoint (no token needed) says is valid.
        cards = await client.get(
            "/api/consular/credentials", params={"application_id": application_id}, headers=me
        )
        assert cards.status_code == 200, cards.text
        (card,) = cards.json()["items"]
        credential_id = card["id"]
        assert card["credential_type"] == "consular_card"
        assert card["holder_id"] == member_id
        assert card["embassy_id"] == "fr-paris"
        token_answer = await client.get(
            f"/api/consular/credentials/{credential_id}/token", headers=me
        )
        assert token_answer.status_code == 200, token_answer.text
        assert token_answer.headers["content-type"].startswith("application/jwt")
        token = token_answer.text
        pdf_answer = await client.get(
            f"/api/consular/credentials/{credential_id}/document.pdf", headers=me
        )
        assert pdf_answer.status_code == 200, pdf_answer.text
        assert pdf_answer.headers["content-type"] == "application/pdf"
        assert pdf_answer.content.startswith(b"%PDF-")
        assert read_qr_codes(pdf_answer.content) == [token]
        genuine = await client.post("/api/consular/credentials/verify", json={"token": token})
        assert genuine.status_code == 200, genuine.text
        assert genuine.json()["status"] == "valid", genuine.text
        assert genuine.json()["credential_id"] == credential_id
        assert genuine.json()["application_reference"] == reference
        assert genuine.json()["issuing_embassy"] == "fr-paris"
        forged = await client.post(
            "/api/consular/credentials/verify", json={"token": tampered(token)}
        )
        assert forged.status_code == 200, forged.text
        assert forged.json()["status"] == "forged", forged.text
        # Another person cannot download her card (404, as if it did not exist).
        stranger = issuer.headers(citizen("someone-else"))
        hidden = await client.get(
            f"/api/consular/credentials/{credential_id}/document.pdf", headers=stranger
        )
        assert hidden.status_code == 404, hidden.text

    # 7. Every step is on consular.applications (what notifications turns into the status
    #    emails), published by consular's relay, keyed by the application, answers sealed;
    #    with the booking's and the card's events on the same topic and key.
    records = await read_topic(
        platform.kafka_bootstrap,
        platform.topic_prefix + CONSULAR_APPLICATIONS.name,
        expect=7,
        timeout=60,
    )
    # One key, so one partition: its offsets are the order of publication.
    assert len({r.partition for r in records}) == 1
    events = [_event(r) for r in sorted(records, key=lambda r: (r.partition, r.offset))]
    assert len(events) == 7, [kind for kind, _, _ in events]
    assert {key for _, _, key in events} == {application_id}
    applications = [e for e in events if e[0].startswith("consular.application.")]
    assert [
        (kind, data.get("action"), data.get("to_status")) for kind, data, _ in applications
    ] == [
        ("consular.application.submitted", None, None),
        ("consular.application.status-changed", "start_review", "under_review"),
        ("consular.application.status-changed", "approve", "approved"),
        ("consular.application.status-changed", "issue", "issued"),
    ]
    assert all(data["applicant_id"] == member_id for _, data, _ in applications)
    assert applications[-1][1]["reference"] == reference
    (appointment,) = [d for kind, d, _ in events if kind == "consular.appointment.booked"]
    assert appointment["appointment_id"] == appointment_id
    assert appointment["application_id"] == application_id
    assert appointment["applicant_id"] == member_id
    assert appointment["embassy_id"] == "fr-paris"
    assert datetime.fromisoformat(appointment["slot_start"]) == booked_start
    (payment,) = [d for kind, d, _ in events if kind == "consular.payment.recorded"]
    assert payment["receipt_number"] == receipt_number
    (credential,) = [d for kind, d, _ in events if kind == "consular.credential.issued"]
    assert credential["credential_id"] == credential_id
    assert credential["application_id"] == application_id
    assert credential["holder_id"] == member_id
    assert credential["credential_type"] == "consular_card"
    assert credential["embassy_id"] == "fr-paris"
    # The booking came after the submission; the card after the approval (its issue's
    # transition and the card are one transaction: their relative order is not a contract).
    kinds = [(kind, data.get("to_status")) for kind, data, _ in events]
    assert kinds.index(("consular.appointment.booked", None)) > kinds.index(
        ("consular.application.submitted", None)
    )
    assert kinds.index(("consular.credential.issued", None)) > kinds.index(
        ("consular.application.status-changed", "approved")
    )
    # Crypto-shredding: the answers travel sealed with the person's data key; the card's
    # event carries ids and dates only (the holder's data are in the token).
    assert all("Lilas" not in json.dumps(data) for _, data, _ in events)
    assert all("Akossiwa" not in json.dumps(data) for _, data, _ in events)
    assert all("GUICHET-42" not in json.dumps(data) for _, data, _ in events)  # payer's reference


def _event(record: Any) -> tuple[str, dict[str, Any], str]:
    headers = {k: v.decode() for k, v in record.headers}
    return headers["ce_type"], json.loads(record.value), record.key.decode()
