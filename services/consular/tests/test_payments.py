"""Payments by reference on the real PostgreSQL and Kafka: an approval is refused while the
fee is unpaid; an officer of the case's embassy records a payment and gets a receipt number
(sequential per embassy and year, gap-free under concurrency); wrong currency or amount is
422; the applicant sees what is owed, paid and the receipt; the ministry voids a receipt
(audited), which reopens the debt; other embassies get 404, other roles 403."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from consular_testing import (
    answers_for,
    known_applicant,
    new_member_id,
    profile,
    upload_required_documents,
)
from sqlalchemy import select

from consular.payments import domain
from consular.resources import Consular
from consular.tables import audit_log, outbox
from diaspora_devstack.testing import publish_outbox, read_topic
from diaspora_events.topics import CONSULAR_APPLICATIONS
from diaspora_identity.testing import LocalIssuer, Persona, citizen, coordinator, officer

pytestmark = pytest.mark.integration

PASSPORT_FEE = {"amount": "50000", "currency": "XOF"}


class Caller:
    def __init__(self, http: httpx.AsyncClient, issuer: LocalIssuer, persona: Persona) -> None:
        self.http = http
        self.persona = persona
        self.headers = issuer.headers(persona)

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post(path, json=body, headers=self.headers)

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path, headers=self.headers)

    async def act(self, app_id: str, action: str, **body: Any) -> httpx.Response:
        return await self.post(f"/applications/{app_id}/transitions", {"action": action, **body})


def ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


async def under_review(
    consular: Consular,
    http: httpx.AsyncClient,
    issuer: LocalIssuer,
    service_type: str = "passport_preparation",
) -> tuple[Caller, str]:
    """A Paris applicant's application of ``service_type``, submitted and under review."""
    member_id = new_member_id()
    await known_applicant(consular, member_id, profile(verified=True))
    person = Caller(http, issuer, citizen(member_id=member_id))
    app_id = ok(await person.post("/applications", {"service_type": service_type}), 201)["id"]
    await upload_required_documents(http, person.headers, app_id, service_type)
    ok(await person.act(app_id, "submit", answers=answers_for(service_type)))
    ok(await Caller(http, issuer, officer("fr-paris")).act(app_id, "start_review"))
    return person, app_id


def pay(method: str = "bank_transfer", **overrides: Any) -> dict[str, Any]:
    return {"method": method, "payer_reference": "VIR-2026-1188", **PASSPORT_FEE, **overrides}


def test_receipt_numbers_name_the_embassy_and_year() -> None:
    assert domain.receipt_number("fr-paris", 2026, 123) == "FR-PAR-2026-000123"
    assert domain.receipt_number("et-addis-ababa", 2027, 1) == "ET-ADD-2027-000001"
    assert domain.receipt_number("tg-lome", 2026, 1_234_567) == "TG-LOM-2026-1234567"


async def test_approval_waits_for_the_fee_and_the_receipt_is_numbered(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer, topic_prefix: str
) -> None:
    person, app_id = await under_review(consular, http, identity_provider)
    paris = Caller(http, identity_provider, officer("fr-paris"))

    refused = await paris.act(app_id, "approve")
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["type"].endswith("fee-unpaid")
    assert (problem["amount_due"], problem["currency"]) == ("50000.00", "XOF")
    assert ok(await person.get(f"/applications/{app_id}"))["status"] == "under_review"

    owed = ok(await person.get(f"/applications/{app_id}/payments"))
    assert (owed["fee_amount"], owed["paid"], owed["due"], owed["settled"]) == (
        "50000.00",
        "0",
        "50000.00",
        False,
    )

    # Wrong currency, wrong amount: 422 naming the field; nothing recorded.
    wrong = await paris.post(f"/applications/{app_id}/payments", pay(currency="EUR"))
    assert wrong.status_code == 422, wrong.text
    assert [e["field"] for e in wrong.json()["errors"]] == ["currency"]
    short = await paris.post(f"/applications/{app_id}/payments", pay(amount="49999.99"))
    assert short.status_code == 422, short.text
    assert [e["field"] for e in short.json()["errors"]] == ["amount"]

    receipt = ok(await paris.post(f"/applications/{app_id}/payments", pay("mobile_money")), 201)
    year = datetime.now(UTC).year
    assert receipt["receipt_number"] == f"FR-PAR-{year}-000001"
    assert receipt["method"] == "mobile_money"
    again = await paris.post(f"/applications/{app_id}/payments", pay())
    assert again.status_code == 409, again.text
    assert again.json()["receipt_number"] == receipt["receipt_number"]

    seen = ok(await person.get(f"/applications/{app_id}/payments"))
    assert (seen["paid"], seen["due"], seen["settled"]) == ("50000.00", "0.00", True)
    assert [r["receipt_number"] for r in seen["receipts"]] == [receipt["receipt_number"]]
    assert seen["receipts"][0]["recorded_by"] is None  # the officer is shown to staff only

    assert ok(await paris.act(app_id, "approve"))["status"] == "approved"

    await publish_outbox(
        consular.engine,
        outbox,
        kafka_bootstrap=consular.settings.kafka_bootstrap,
        topic_prefix=topic_prefix,
        client_id="consular-test-relay",
    )
    records = await read_topic(
        consular.settings.kafka_bootstrap, topic_prefix + CONSULAR_APPLICATIONS.name, expect=5
    )
    recorded = [
        json.loads(r.value)
        for r in records
        if dict(r.headers)["ce_type"] == b"consular.payment.recorded"
    ]
    assert len(recorded) == 1
    assert recorded[0]["receipt_number"] == receipt["receipt_number"]
    assert recorded[0]["application_id"] == app_id
    assert (recorded[0]["amount"], recorded[0]["currency"]) == ("50000.00", "XOF")
    assert recorded[0]["payer_reference"] == "VIR-2026-1188"


async def test_who_records_and_what_is_refused(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    person, app_id = await under_review(consular, http, identity_provider)
    path = f"/applications/{app_id}/payments"
    berlin = Caller(http, identity_provider, officer("de-berlin"))
    assert (await berlin.post(path, pay())).status_code == 404
    assert (await berlin.get(path)).status_code == 404
    assert (await person.post(path, pay())).status_code == 403
    assert (
        await Caller(http, identity_provider, coordinator()).post(path, pay())
    ).status_code == 403
    paris = Caller(http, identity_provider, officer("fr-paris"))
    for malformed in (
        pay(method="card"),
        pay(amount="abc"),
        pay(amount="-5"),
        pay(currency="xof"),
        {"method": "bank_transfer", **PASSPORT_FEE},
        pay(payer_reference=""),
        pay(extra="x"),
    ):
        answer = await paris.post(path, malformed)
        assert answer.status_code == 422, (malformed, answer.text)
    # A free service owes nothing; a draft takes no payment.
    _, free = await under_review(consular, http, identity_provider, "civil_status_transcription")
    nothing = await paris.post(f"/applications/{free}/payments", pay())
    assert nothing.status_code == 409, nothing.text
    assert nothing.json()["type"].endswith("nothing-owed")
    ok(await paris.act(free, "approve"))  # free: nothing blocks the approval
    draft = ok(await person.post("/applications", {"service_type": "passport_preparation"}), 201)
    closed = await paris.post(f"/applications/{draft['id']}/payments", pay())
    # A draft is its author's alone: not found for the officer.
    assert closed.status_code == 404, closed.text


async def test_twenty_concurrent_recordings_get_consecutive_numbers(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    app_ids = [(await under_review(consular, http, identity_provider))[1] for _ in range(20)]
    paris = Caller(http, identity_provider, officer("fr-paris"))
    answers = await asyncio.gather(
        *(
            paris.post(f"/applications/{a}/payments", pay(payer_reference=f"MM-{i}"))
            for i, a in enumerate(app_ids)
        )
    )
    assert [a.status_code for a in answers] == [201] * 20, [a.text for a in answers]
    numbers = sorted(a.json()["receipt_number"] for a in answers)
    year = datetime.now(UTC).year
    assert numbers == [f"FR-PAR-{year}-{n:06d}" for n in range(1, 21)]
    # One per application.
    assert len({a.json()["application_id"] for a in answers}) == 20


async def test_the_ministry_voids_a_receipt_and_the_fee_is_owed_again(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    person, app_id = await under_review(consular, http, identity_provider)
    paris = Caller(http, identity_provider, officer("fr-paris"))
    receipt = ok(await paris.post(f"/applications/{app_id}/payments", pay()), 201)
    path = f"/payments/{receipt['id']}/void"
    assert (await paris.post(path, {"reason": "bounced"})).status_code == 403
    assert (await person.post(path, {"reason": "bounced"})).status_code == 403
    ministry = Caller(http, identity_provider, coordinator())
    assert (await ministry.post(path, {})).status_code == 422
    voided = ok(await ministry.post(path, {"reason": "The transfer bounced."}))
    assert voided["voided_at"] is not None
    assert voided["void_reason"] == "The transfer bounced."
    assert (await ministry.post(path, {"reason": "again"})).status_code == 409

    owed = ok(await person.get(f"/applications/{app_id}/payments"))
    assert (owed["due"], owed["settled"]) == ("50000.00", False)
    assert owed["receipts"][0]["voided_at"] is not None
    refused = await paris.act(app_id, "approve")
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("fee-unpaid")

    # Paid again: a new number (the voided one is never given again), approval passes.
    second = ok(await paris.post(f"/applications/{app_id}/payments", pay()), 201)
    assert second["receipt_number"] != receipt["receipt_number"]
    assert second["receipt_number"].endswith("000002")
    ok(await paris.act(app_id, "approve"))

    async with consular.sessions() as session:
        actions = (
            (
                await session.execute(
                    select(audit_log.c.action).where(audit_log.c.resource == "consular_payment")
                )
            )
            .scalars()
            .all()
        )
    assert "void_payment" in actions
    assert actions.count("record_payment") == 2
