"""A foreign visitor's contact travels, sealed, on their e-visa's status events (real
PostgreSQL and Kafka): the verified email of their account, the name on the form and the
language of their token, so that notifications can mail them
(services/notifications/tests/test_consular_messages.py takes it from there). An
unverified email is never carried; a registry member's events carry none."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx
import pytest
from consular_testing import (
    answers_for,
    known_applicant,
    new_member_id,
    pay_fee,
    profile,
    upload_required_documents,
)

from consular.resources import Consular
from consular.tables import outbox
from diaspora_devstack.testing import publish_outbox, read_topic
from diaspora_events.topics import CONSULAR_APPLICATIONS
from diaspora_identity.testing import LocalIssuer, Persona, citizen, officer

pytestmark = pytest.mark.integration


def ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


async def apply(
    http: httpx.AsyncClient, issuer: LocalIssuer, persona: Persona, service_type: str
) -> str:
    headers = issuer.headers(persona)
    body = {"service_type": service_type}
    draft = ok(await http.post("/applications", json=body, headers=headers), 201)
    await upload_required_documents(http, headers, draft["id"], service_type)
    ok(
        await http.post(
            f"/applications/{draft['id']}/transitions",
            json={"action": "submit", "answers": answers_for(service_type)},
            headers=headers,
        )
    )
    return str(draft["id"])


async def test_a_visitor_s_verified_contact_is_on_their_status_events_and_no_one_else_s(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer, topic_prefix: str
) -> None:
    visitor = dataclasses.replace(
        citizen(),
        extra={"email": "john.smith@example.com", "email_verified": True, "locale": "en-GB"},
    )
    unverified = dataclasses.replace(
        citizen(), extra={"email": "someone@example.com", "email_verified": False}
    )
    member_id = new_member_id()
    await known_applicant(consular, member_id, profile(verified=True))
    member = citizen(member_id=member_id)

    visa = await apply(http, identity_provider, visitor, "e_visa")
    other_visa = await apply(http, identity_provider, unverified, "e_visa")
    card = await apply(http, identity_provider, member, "consular_card")
    lome = identity_provider.headers(officer("tg-lome"))
    path = f"/applications/{visa}/transitions"
    ok(await http.post(path, json={"action": "start_review"}, headers=lome))
    await pay_fee(http, lome, visa)
    ok(await http.post(path, json={"action": "approve"}, headers=lome))

    await publish_outbox(
        consular.engine,
        outbox,
        kafka_bootstrap=consular.settings.kafka_bootstrap,
        topic_prefix=topic_prefix,
        client_id="consular-test-relay",
    )
    records = await read_topic(
        consular.settings.kafka_bootstrap, topic_prefix + CONSULAR_APPLICATIONS.name, expect=6
    )
    events = sorted(
        (
            (json.loads(r.value), dict((k, v.decode()) for k, v in r.headers)["ce_type"])
            for r in records
        ),
        key=lambda e: str(e[0]),
    )
    by_application: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for body, kind in events:
        if not kind.startswith("consular.application."):
            continue  # the fee's payment, on the same topic
        by_application.setdefault(body["application_id"], []).append((kind, body))

    assert len(by_application[visa]) == 3  # submitted, review started, approved
    for _kind, body in by_application[visa]:
        assert body["visitor_email"] == "john.smith@example.com"
        assert body["visitor_name"] == "Lena Schmidt"
        assert body["visitor_language"] == "en"
    approved = [b for _k, b in by_application[visa] if b.get("to_status") == "approved"]
    assert len(approved) == 1
    assert approved[0]["reference"].startswith("EV-")
    for application in (other_visa, card):
        for _kind, body in by_application[application]:
            assert body["visitor_email"] is None
            assert body["visitor_name"] is None
