"""Helpers of consular's tests (not shipped): registry member snapshots and events, and
applicants put straight into the read model (through the consumer's own function)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import uuid_utils.compat as uuid_compat
from aiokafka import AIOKafkaProducer

from consular.members import service as members
from consular.resources import Consular
from diaspora_events.cloudevents import encode, headers_to_kafka
from diaspora_events.contracts.base import Event
from diaspora_events.contracts.registry import IdentityVerification, MemberProfile
from diaspora_events.kafka import ensure_topics
from diaspora_events.topics import REGISTRY_MEMBERS


def new_member_id() -> UUID:
    return uuid_compat.uuid7()


def profile(
    *,
    given_name: str = "Akossiwa",
    family_name: str = "Mensah",
    country: str = "FR",
    embassy_id: str = "fr-paris",
    preferred_language: str = "fr",
    verified: bool = False,
    expires_on: date | None = None,
) -> MemberProfile:
    return MemberProfile(
        given_name=given_name,
        family_name=family_name,
        date_of_birth=date(1990, 4, 27),
        email=f"{given_name.lower()}.{family_name.lower()}@example.org",
        phone="+33612345678",
        preferred_language=preferred_language,
        country_of_residence=country,
        embassy_id=embassy_id,
        identity=(
            IdentityVerification(
                level="in_person",
                method="document_in_person",
                document_type="passport",
                verified_at=datetime.now(UTC),
                embassy_id=embassy_id,
                expires_on=expires_on,
            )
            if verified
            else None
        ),
    )


async def known_applicant(
    service: Consular, member_id: UUID, snapshot: MemberProfile, at: datetime | None = None
) -> None:
    """The read model holds ``snapshot`` (as the consumer would have written it)."""
    async with service.sessions() as session, session.begin():
        await members.apply_snapshot(session, member_id, snapshot, at or datetime.now(UTC))


async def publish(bootstrap: str, topic: str, *events: Event, times: int = 1) -> None:
    """Publish registry events as the registry's relay does (CloudEvents, keyed by member);
    the topic is created first if missing, with the settings of ``registry.members``.
    ``times``: each record sent that many times, as it is (a redelivery: same event id)."""
    await ensure_topics(bootstrap, [replace(REGISTRY_MEMBERS, name=topic)])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for event in events:
            _id, headers, value = encode(event, source="/tg/diaspora/registry")
            for _ in range(times):
                await producer.send_and_wait(
                    topic,
                    value=value,
                    key=event.aggregate_id().encode(),
                    headers=headers_to_kafka(headers),
                )
    finally:
        await producer.stop()


def answers_for(service_type: str) -> dict[str, Any]:
    """Complete, valid answers to each seeded form."""
    return {
        "consular_card": {
            "address_abroad": "12 rue des Lilas, 75011 Paris",
            "marital_status": "single",
            "emergency_contact_name": "Kodjo Mensah",
            "emergency_contact_phone": "+22890000000",
        },
        "laissez_passer": {
            "reason": "lost_passport",
            "travel_date": "2027-01-15",
            "destination": "Lomé",
            "expected_return_date": "2027-03-01",
        },
        "passport_preparation": {
            "request_kind": "renewal",
            "height_cm": 172,
            "place_of_birth": "Kpalimé",
        },
        "national_id_preparation": {
            "request_kind": "first",
            "place_of_birth": "Sokodé",
            "father_name": "Komlan Mensah",
            "mother_name": "Ama Mensah",
        },
        "civil_status_transcription": {
            "event_kind": "birth",
            "event_date": "2026-10-02",
            "event_country": "FR",
            "local_registry_office": "Mairie du 11e arrondissement",
            "persons_concerned": "Enfant: Yawa Mensah",
        },
        "e_visa": {
            "given_name": "Lena",
            "family_name": "Schmidt",
            "date_of_birth": "1992-06-30",
            "passport_number": "X1234567",
            "passport_expiry_date": "2031-05-31",
            "nationality": "DE",
            "arrival_date": "2027-02-01",
            "stay_days": 10,
            "purpose": "tourism",
        },
    }[service_type]


async def pay_fee(http: Any, headers: dict[str, str], application_id: str) -> str | None:
    """An officer (``headers``) records the payment of the application's fee in full, as
    an approval needs (docs/consular.md, "Payments"); the receipt number, or None for a
    free service."""
    owed = await http.get(f"/applications/{application_id}/payments", headers=headers)
    assert owed.status_code == 200, owed.text
    if owed.json()["settled"]:
        return None
    paid = await http.post(
        f"/applications/{application_id}/payments",
        json={
            "method": "cash_at_embassy",
            "payer_reference": "GUICHET-0001",
            "amount": owed.json()["due"],
            "currency": owed.json()["currency"],
        },
        headers=headers,
    )
    assert paid.status_code == 201, paid.text
    number: str = paid.json()["receipt_number"]
    return number


async def upload_document(
    http: Any,
    headers: dict[str, str],
    path: str,
    data: bytes,
    *,
    filename: str = "scan.pdf",
    content_type: str = "application/pdf",
    kind: str | None = None,
) -> Any:
    """POST a document to ``path`` (``/applications/{id}/documents`` or a report's) as a
    browser's form would send it; the response as it is."""
    return await http.post(
        path,
        files={"file": (filename, data, content_type)},
        data={"kind": kind} if kind is not None else None,
        headers=headers,
    )


async def upload_required_documents(
    http: Any, headers: dict[str, str], application_id: str, service_type: str
) -> list[dict[str, Any]]:
    """Upload a real one-page PDF for each document the catalogue requires of
    ``service_type`` (read from the public catalogue); the documents as answered (201)."""
    from diaspora_documents import testing as samples

    found = await http.get(f"/catalogue/service-types/{service_type}")
    assert found.status_code == 200, found.text
    uploaded = []
    for requirement in found.json()["required_documents"]:
        if not requirement["required"]:
            continue
        answer = await upload_document(
            http,
            headers,
            f"/applications/{application_id}/documents",
            samples.pdf(1),
            filename=f"{requirement['code']}.pdf",
            kind=requirement["code"],
        )
        assert answer.status_code == 201, answer.text
        uploaded.append(answer.json())
    return uploaded


async def store_required_documents(service: Consular, session: Any, row: dict[str, Any]) -> None:
    """For tests working below HTTP: a real one-page PDF for each document the
    application's catalogue version requires, put in the service's store and recorded in
    ``session`` (as the upload route does after its checks)."""
    from consular.catalogue import service as catalogue
    from consular.documents import service as documents
    from diaspora_documents import testing as samples

    version = await catalogue.by_id(session, row["service_version_id"])
    assert service.documents is not None
    store = await service.documents.get()
    for requirement in version.definition.required_documents:
        if not requirement.required:
            continue
        document_id, key = documents.new_key("application", row["id"])
        stored = await store.put(
            key, samples.stream(samples.pdf(1)), content_type="application/pdf"
        )
        await documents.record(
            session,
            document_id=document_id,
            owner="application",
            owner_id=row["id"],
            member_id=row["applicant_id"],
            kind=requirement.code,
            filename=f"{requirement.code}.pdf",
            stored=stored,
            uploader=documents.Uploader(row["applicant_subject"], "applicant"),
            now=datetime.now(UTC),
        )
