"""Applications end to end on the real PostgreSQL and Kafka: the full lifecycle of every
service type (the e-visa's by a foreign visitor without a registry record), forbidden
transitions (409 naming the allowed ones), scoping to the officer's embassy (404),
eligibility, form validation, If-Match, the officers' queue, SLA flags and escalation,
and the events read back from the topic."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

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
from sqlalchemy import select, update

from consular.applications.tables import applications
from consular.bootstrap import run_sla_once
from consular.resources import Consular
from consular.tables import audit_log, outbox
from diaspora_devstack.testing import publish_outbox, read_topic
from diaspora_events.topics import CONSULAR_APPLICATIONS
from diaspora_identity.testing import LocalIssuer, Persona, citizen, coordinator, officer

pytestmark = pytest.mark.integration

LIFECYCLE_TYPES = [
    "consular_card",
    "laissez_passer",
    "passport_preparation",
    "national_id_preparation",
    "civil_status_transcription",
]


class Client:
    """One caller of the API."""

    def __init__(self, http: httpx.AsyncClient, issuer: LocalIssuer, persona: Persona) -> None:
        self.http = http
        self.headers = issuer.headers(persona)
        self.persona = persona

    async def create(self, service_type: str, answers: dict[str, Any] | None = None) -> Any:
        return await self.http.post(
            "/applications",
            json={"service_type": service_type, "answers": answers or {}},
            headers=self.headers,
        )

    async def act(
        self,
        application_id: str,
        action: str,
        *,
        reason: str | None = None,
        answers: dict[str, Any] | None = None,
        version: int | None = None,
    ) -> httpx.Response:
        body: dict[str, Any] = {"action": action}
        if reason is not None:
            body["reason"] = reason
        if answers is not None:
            body["answers"] = answers
        headers = dict(self.headers)
        if version is not None:
            headers["If-Match"] = f'"{version}"'
        return await self.http.post(
            f"/applications/{application_id}/transitions", json=body, headers=headers
        )

    async def get(self, application_id: str) -> httpx.Response:
        return await self.http.get(f"/applications/{application_id}", headers=self.headers)

    async def upload_required(self, application_id: str, service_type: str) -> None:
        """A document of every kind the catalogue requires (submit refuses without)."""
        await upload_required_documents(self.http, self.headers, application_id, service_type)

    async def queue(self, **params: Any) -> httpx.Response:
        return await self.http.get("/applications", params=params, headers=self.headers)


async def applicant(
    consular: Consular,
    http: httpx.AsyncClient,
    issuer: LocalIssuer,
    *,
    verified: bool = True,
    embassy_id: str = "fr-paris",
    country: str = "FR",
) -> Client:
    member_id = new_member_id()
    await known_applicant(
        consular, member_id, profile(verified=verified, embassy_id=embassy_id, country=country)
    )
    return Client(http, issuer, citizen(member_id=member_id))


def ok(answer: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def published_events(consular: Consular, topic_prefix: str, expect: int) -> list[Any]:
    """Publish the outbox as the relay does, then read the applications topic back."""
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
    return sorted(records, key=lambda r: (r.timestamp, r.offset))


def event_of(record: Any) -> tuple[str, dict[str, Any]]:
    headers = {k: v.decode() for k, v in record.headers}
    return headers["ce_type"], json.loads(record.value)


@pytest.mark.parametrize("service_type", LIFECYCLE_TYPES)
async def test_full_lifecycle_of_a_service_type(
    service_type: str,
    consular: Consular,
    http: httpx.AsyncClient,
    identity_provider: LocalIssuer,
    topic_prefix: str,
) -> None:
    person = await applicant(consular, http, identity_provider)
    paris = Client(http, identity_provider, officer("fr-paris"))

    draft = await person.create(service_type)
    assert draft.status_code == 201, draft.text
    assert draft.headers["etag"] == '"1"'
    app = draft.json()
    assert app["status"] == "draft"
    assert app["embassy_id"] == "fr-paris"
    assert app["allowed_actions"] == ["submit", "withdraw"]
    app_id = app["id"]

    await person.upload_required(app_id, service_type)
    submitted = ok(await person.act(app_id, "submit", answers=answers_for(service_type), version=1))
    assert submitted["status"] == "submitted"
    days = {"consular_card": 15, "laissez_passer": 5}.get(service_type)
    due = datetime.fromisoformat(submitted["due_at"]) - datetime.fromisoformat(
        submitted["submitted_at"]
    )
    if days is not None:
        assert due == timedelta(days=days)
    assert submitted["overdue"] is False
    # The fee is paid before the approval (docs/consular.md, "Payments").
    receipt = await pay_fee(paris.http, paris.headers, app_id)

    steps: list[tuple[Client, str, str | None, str]] = [
        (paris, "start_review", None, "under_review"),
        (
            paris,
            "request_information",
            "Photo illisible, merci d'en envoyer une autre.",
            "information_requested",
        ),
        (person, "resubmit", None, "resubmitted"),
        (paris, "start_review", None, "under_review"),
        (paris, "approve", None, "approved"),
        (paris, "issue", None, "issued"),
        (paris, "mark_collected", None, "collected"),
    ]
    version = submitted["version"]
    for client, action, reason, status in steps:
        answer = await client.act(app_id, action, reason=reason, version=version)
        body = ok(answer)
        assert body["status"] == status, action
        assert answer.headers["etag"] == f'"{body["version"]}"'
        version = body["version"]

    approved = ok(await person.get(app_id))
    initials = "".join(w[0] for w in service_type.split("_")).upper()
    assert approved["reference"].startswith(f"{initials}-{datetime.now(UTC).year}-")

    # The applicant sees the status and the whole history (not the officers' subjects).
    seen = ok(await person.get(app_id))
    assert seen["status"] == "collected"
    assert seen["allowed_actions"] == []
    assert [(h["action"], h["to_status"]) for h in seen["history"]] == [
        ("create", "draft"),
        ("submit", "submitted"),
        *[(action, status) for _c, action, _r, status in steps],
    ]
    assert seen["history"][3]["reason"] == "Photo illisible, merci d'en envoyer une autre."
    assert {h["actor_subject"] for h in seen["history"]} == {None}
    staff_view = ok(await paris.get(app_id))
    assert staff_view["history"][2]["actor_subject"] == paris.persona.subject
    assert staff_view["applicant"]["family_name"] == "Mensah"

    # Every transition is an event on consular.applications, keyed by the application.
    # An issued consular card also publishes its signed credential (test_credentials.py);
    # a laissez-passer's issue also says so, with the expected return date (item 9),
    # right after its status change.
    # A paid fee publishes its receipt (test_payments.py); an approved passport or identity
    # card preparation its hand-over package (test_handover.py).
    card = service_type == "consular_card"
    issues_a_pass = service_type == "laissez_passer"
    paid = receipt is not None
    handed_over = service_type in ("passport_preparation", "national_id_preparation")
    records = await published_events(
        consular, topic_prefix, expect=8 + card + issues_a_pass + paid + handed_over
    )
    apart = ("consular.credential.issued", "consular.payment.recorded", "consular.handover.sent")
    events = [e for e in map(event_of, records) if e[0] not in apart]
    assert len(events) == len(records) - card - paid - handed_over
    assert [e["receipt_number"] for t, e in map(event_of, records) if t == apart[1]] == (
        [receipt] if paid else []
    )
    assert len([t for t, _e in map(event_of, records) if t == apart[2]]) == handed_over
    assert [t for t, _ in events] == [
        "consular.application.submitted",
        *["consular.application.status-changed"] * 6,
        *(["consular.laissez-passer.issued"] if issues_a_pass else []),
        "consular.application.status-changed",
    ]
    assert {r.key.decode() for r in records} == {app_id}
    if issues_a_pass:
        passed = events[7][1]
        assert passed["application_id"] == app_id
        assert passed["applicant_id"] == str(person.persona.member_id)
        assert passed["embassy_id"] == "fr-paris"
        assert passed["expected_return_date"] == "2027-03-01"
        assert passed["travel_date"] == "2027-01-15"
        assert passed["reference"] == approved["reference"]
        events = [e for e in events if e[0] != "consular.laissez-passer.issued"]
    first = events[0][1]
    assert first["applicant_id"] == str(person.persona.member_id)
    assert first["embassy_id"] == "fr-paris"
    assert first["answers"] == answers_for(service_type)
    assert [(e["action"], e["to_status"], e["actor_role"]) for _t, e in events[1:]] == [
        (action, status, "applicant" if client is person else "embassy_officer")
        for client, action, _r, status in steps
    ]

    # Officers' transitions and reads are audited (the applicant's own are not).
    async with consular.sessions() as session:
        audited = (
            await session.execute(
                select(audit_log.c.action, audit_log.c.actor_subject).where(
                    audit_log.c.record_id == person.persona.member_id
                )
            )
        ).all()
    assert {a for a, s in audited if s == paris.persona.subject} >= {
        "start_review",
        "approve",
        "issue",
        "mark_collected",
        "read",
    }
    assert all(s != person.persona.subject for _a, s in audited)


async def test_forbidden_transitions_answer_409_naming_the_allowed_ones(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    person = await applicant(consular, http, identity_provider)
    paris = Client(http, identity_provider, officer("fr-paris"))
    app_id = ok(await person.create("passport_preparation"), 201)["id"]

    # An officer does not see a draft (it is its author's).
    assert (await paris.act(app_id, "start_review")).status_code == 404
    await person.upload_required(app_id, "passport_preparation")
    ok(await person.act(app_id, "submit", answers=answers_for("passport_preparation")))

    again = await person.act(app_id, "submit")
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["allowed"] == ["withdraw"]
    assert again.json()["status_now"] == "submitted"

    early = await paris.act(app_id, "approve")
    assert early.status_code == 409
    assert early.json()["allowed"] == ["start_review", "request_information"]

    # The applicant may not decide, the officer may not submit: their roles have no such
    # function (403).
    assert (await person.act(app_id, "approve")).status_code == 403
    assert (await paris.act(app_id, "withdraw")).status_code == 403

    ok(await paris.act(app_id, "start_review"))
    no_reason = await paris.act(app_id, "reject")
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "reason"
    ok(await paris.act(app_id, "reject", reason="Dossier incomplet"))
    final = await person.act(app_id, "withdraw")
    assert final.status_code == 409
    assert final.json()["allowed"] == []


async def test_an_officer_of_another_embassy_gets_404_and_never_sees_it_in_a_queue(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    person = await applicant(consular, http, identity_provider)
    berlin = Client(http, identity_provider, officer("de-berlin"))
    paris = Client(http, identity_provider, officer("fr-paris"))
    app_id = ok(await person.create("consular_card"), 201)["id"]
    await person.upload_required(app_id, "consular_card")
    ok(await person.act(app_id, "submit", answers=answers_for("consular_card")))

    assert (await berlin.get(app_id)).status_code == 404
    assert (await berlin.act(app_id, "start_review")).status_code == 404
    moved = await berlin.http.put(
        f"/applications/{app_id}/assignment", json={"assignee": "me"}, headers=berlin.headers
    )
    assert moved.status_code == 404
    assert ok(await berlin.queue())["total"] == 0
    assert [a["id"] for a in ok(await paris.queue())["items"]] == [app_id]
    # Another citizen does not see it either.
    stranger = await applicant(consular, http, identity_provider)
    assert (await stranger.get(app_id)).status_code == 404
    assert ok(await stranger.queue())["total"] == 0


async def test_an_unverified_applicant_is_refused_a_consular_card_with_a_clear_reason(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    person = await applicant(consular, http, identity_provider, verified=False)
    app_id = ok(await person.create("consular_card"), 201)["id"]
    refused = await person.act(app_id, "submit", answers=answers_for("consular_card"))
    assert refused.status_code == 422
    problem = refused.json()
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert problem["reason"] == "identity_not_verified"
    assert "verified identity" in problem["detail"]
    assert ok(await person.get(app_id))["status"] == "draft"
    # A registered member without verification may still prepare a passport application.
    other = ok(await person.create("passport_preparation"), 201)["id"]
    answers = answers_for("passport_preparation")
    await person.upload_required(other, "passport_preparation")
    assert ok(await person.act(other, "submit", answers=answers))["status"] == "submitted"


async def test_a_consular_card_is_refused_when_the_only_identity_check_has_expired(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    member_id = new_member_id()
    today = datetime.now(UTC).date()
    first = datetime.now(UTC) - timedelta(days=1)
    await known_applicant(
        consular, member_id, profile(verified=True, expires_on=today - timedelta(days=1)), first
    )
    person = Client(http, identity_provider, citizen(member_id=member_id))
    app_id = ok(await person.create("consular_card"), 201)["id"]
    refused = await person.act(app_id, "submit", answers=answers_for("consular_card"))
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["reason"] == "identity_expired"
    assert "expired" in problem["detail"]
    assert ok(await person.get(app_id))["status"] == "draft"
    # An officer checks a document valid until today (the last day it counts): eligible.
    await known_applicant(consular, member_id, profile(verified=True, expires_on=today))
    await person.upload_required(app_id, "consular_card")
    submitted = await person.act(app_id, "submit", answers=answers_for("consular_card"))
    assert ok(submitted)["status"] == "submitted"


async def test_malformed_bodies_and_answers_are_422_problem_details_naming_the_field(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    person = await applicant(consular, http, identity_provider)
    for body in ({"service_type": 5}, {"answers": {}}, {"service_type": "x" * 100}, []):
        answer = await http.post("/applications", json=body, headers=person.headers)
        assert answer.status_code == 422, body
        assert answer.headers["content-type"].startswith("application/problem+json")
    garbled = await http.post(
        "/applications",
        content=b"{not json",
        headers={**person.headers, "content-type": "application/json"},
    )
    assert garbled.status_code == 422
    unknown = await person.create("driving_licence")
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "service_type"

    wrong = await person.create("passport_preparation", {"height_cm": "tall", "colour": "red"})
    assert wrong.status_code == 422
    fields = {e["field"] for e in wrong.json()["errors"]}
    assert fields == {"answers.height_cm", "answers.colour"}

    app_id = ok(await person.create("passport_preparation", {"height_cm": 180}), 201)["id"]
    incomplete = await person.act(app_id, "submit")
    assert incomplete.status_code == 422
    assert {e["field"] for e in incomplete.json()["errors"]} == {
        "answers.request_kind",
        "answers.place_of_birth",
    }
    bad_action = await person.act(app_id, "teleport")
    assert bad_action.status_code == 422
    assert bad_action.json()["errors"][0]["field"] == "action"
    stale = await person.act(
        app_id, "submit", answers=answers_for("passport_preparation"), version=7
    )
    assert stale.status_code == 412
    assert stale.headers["etag"] == '"1"'


async def test_applications_keep_the_catalogue_version_they_were_made_under(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    person = await applicant(consular, http, identity_provider)
    app_id = ok(await person.create("laissez_passer"), 201)["id"]
    current = ok(await http.get("/catalogue/service-types/laissez_passer"))
    edited = {
        k: v
        for k, v in current.items()
        if k not in ("code", "version", "current_version", "version_id", "published_at")
    }
    edited["form_fields"] = [
        *edited["form_fields"],
        {
            "name": "flight_number",
            "type": "text",
            "required": True,
            "labels": {"fr": "Numéro de vol", "en": "Flight number"},
            "options": [],
        },
    ]
    minister = identity_provider.headers(coordinator())
    ok(await http.put("/catalogue/service-types/laissez_passer", json=edited, headers=minister))
    # The old application is judged by version 1's form (no flight number needed) ...
    await person.upload_required(app_id, "laissez_passer")
    old = ok(await person.act(app_id, "submit", answers=answers_for("laissez_passer")))
    assert old["catalogue_version"] == 1
    # ... a new one by version 2's.
    new_id = ok(await person.create("laissez_passer"), 201)["id"]
    refused = await person.act(new_id, "submit", answers=answers_for("laissez_passer"))
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "answers.flight_number"


async def test_queue_filters_and_assignment(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    paris = Client(http, identity_provider, officer("fr-paris"))
    ids = []
    for service_type in ("consular_card", "passport_preparation", "national_id_preparation"):
        person = await applicant(consular, http, identity_provider)
        app_id = ok(await person.create(service_type), 201)["id"]
        await person.upload_required(app_id, service_type)
        ok(await person.act(app_id, "submit", answers=answers_for(service_type)))
        ids.append(app_id)
    card, passport, _idcard = ids
    ok(await paris.act(passport, "start_review"))
    assigned = await http.put(
        f"/applications/{card}/assignment",
        json={"assignee": "me"},
        headers={**paris.headers, "If-Match": '"2"'},
    )
    assert ok(assigned)["assigned_to"] == paris.persona.subject

    def listed(page: dict[str, Any]) -> set[str]:
        return {a["id"] for a in page["items"]}

    queue = ok(await paris.queue())
    assert listed(queue) == set(ids)
    # The officer sees who applied (from the applicants read model).
    assert {a["applicant"]["family_name"] for a in queue["items"]} == {"Mensah"}
    assert listed(ok(await paris.queue(status="under_review"))) == {passport}
    assert listed(ok(await paris.queue(service_type="consular_card"))) == {card}
    assert listed(ok(await paris.queue(assigned="me"))) == {card}
    assert listed(ok(await paris.queue(assigned="none"))) == set(ids) - {card}
    assert listed(ok(await paris.queue(overdue="false"))) == set(ids)
    assert listed(ok(await paris.queue(overdue="true"))) == set()
    page = ok(await paris.queue(limit=2))
    assert page["total"] == 3
    assert len(page["items"]) == 2
    assert page["next_offset"] == 2
    bad = await paris.queue(status="lost")
    assert bad.status_code == 422


async def test_a_case_is_assigned_only_to_the_caller_or_an_officer_of_its_embassy(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    person = await applicant(consular, http, identity_provider)
    app_id = ok(await person.create("consular_card"), 201)["id"]
    await person.upload_required(app_id, "consular_card")
    ok(await person.act(app_id, "submit", answers=answers_for("consular_card")))
    paris = Client(http, identity_provider, officer("fr-paris"))
    colleague = Client(http, identity_provider, officer("fr-paris"))
    berlin = Client(http, identity_provider, officer("de-berlin"))
    ministry = Client(http, identity_provider, coordinator())

    async def assign(by: Client, assignee: str | None) -> httpx.Response:
        return await http.put(
            f"/applications/{app_id}/assignment", json={"assignee": assignee}, headers=by.headers
        )

    # A colleague never seen in consular, an invented subject: refused, nothing changes.
    for unknown in (colleague.persona.subject, "somebody-else"):
        refused = await assign(paris, unknown)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["errors"][0]["field"] == "assignee"
    assert ok(await paris.get(app_id))["assigned_to"] is None
    # Seen as an officer of another embassy only: still refused.
    ok(await berlin.queue())
    assert (await assign(paris, berlin.persona.subject)).status_code == 422
    # Once the colleague has worked their queue, they can be given the case, by a
    # colleague or by a coordinator; the caller can always take it; and nobody.
    ok(await colleague.queue())
    assert ok(await assign(paris, colleague.persona.subject))["assigned_to"] == (
        colleague.persona.subject
    )
    assert ok(await assign(ministry, paris.persona.subject))["assigned_to"] == (
        paris.persona.subject
    )
    assert (await assign(ministry, berlin.persona.subject)).status_code == 422
    assert ok(await assign(colleague, "me"))["assigned_to"] == colleague.persona.subject
    assert ok(await assign(colleague, None))["assigned_to"] is None


async def test_overdue_cases_are_flagged_and_escalated_once_to_the_ministry(
    consular: Consular,
    http: httpx.AsyncClient,
    identity_provider: LocalIssuer,
    topic_prefix: str,
) -> None:
    paris = Client(http, identity_provider, officer("fr-paris"))
    ministry = Client(http, identity_provider, coordinator())
    late_person = await applicant(consular, http, identity_provider)
    late = ok(await late_person.create("consular_card"), 201)["id"]
    await late_person.upload_required(late, "consular_card")
    ok(await late_person.act(late, "submit", answers=answers_for("consular_card")))
    on_time_person = await applicant(consular, http, identity_provider)
    on_time = ok(await on_time_person.create("consular_card"), 201)["id"]
    await on_time_person.upload_required(on_time, "consular_card")
    ok(await on_time_person.act(on_time, "submit", answers=answers_for("consular_card")))
    # The first was submitted 20 days ago (its target is 15 days).
    now = datetime.now(UTC)
    async with consular.sessions() as session, session.begin():
        await session.execute(
            update(applications)
            .where(applications.c.id == UUID(late))
            .values(submitted_at=now - timedelta(days=20), due_at=now - timedelta(days=5))
        )

    assert {a["id"] for a in ok(await paris.queue(overdue="true"))["items"]} == {late}
    assert ok(await paris.get(late))["overdue"] is True
    assert ok(await ministry.queue(escalated="true"))["total"] == 0

    outcome = await run_sla_once(consular, now)
    assert outcome.escalated == [UUID(late)]
    # Once only.
    assert (await run_sla_once(consular, now + timedelta(minutes=1))).escalated == []

    flagged = ok(await ministry.queue(escalated="true"))["items"]
    assert [a["id"] for a in flagged] == [late]
    assert flagged[0]["escalated_at"] is not None
    assert flagged[0]["overdue"] is True
    history = ok(await ministry.get(late))["history"]
    assert history[-1]["action"] == "escalate"
    assert history[-1]["actor_role"] == "system"

    records = await published_events(consular, topic_prefix, expect=3)
    escalations = [e for t, e in map(event_of, records) if t == "consular.application.escalated"]
    assert len(escalations) == 1
    assert escalations[0]["application_id"] == late
    assert escalations[0]["embassy_id"] == "fr-paris"
    assert escalations[0]["status"] == "submitted"

    # Decided: no longer overdue.
    ok(await paris.act(late, "start_review"))
    await pay_fee(paris.http, paris.headers, late)
    ok(await paris.act(late, "approve"))
    assert ok(await paris.get(late))["overdue"] is False
    assert ok(await paris.queue(overdue="true"))["total"] == 0


async def test_stale_drafts_and_unanswered_requests_expire(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    person = await applicant(consular, http, identity_provider)
    draft = ok(await person.create("passport_preparation"), 201)["id"]
    now = datetime.now(UTC)
    early = await run_sla_once(consular, now)
    assert early.expired == []
    later = await run_sla_once(consular, now + timedelta(days=91))
    assert later.expired == [UUID(draft)]
    seen = ok(await person.get(draft))
    assert seen["status"] == "expired"
    assert seen["history"][-1]["actor_role"] == "system"


async def test_a_foreign_visitor_applies_for_an_e_visa_and_gets_a_decision_with_a_reference(
    consular: Consular,
    http: httpx.AsyncClient,
    identity_provider: LocalIssuer,
    topic_prefix: str,
) -> None:
    # A visitor's own account: no registry record (no member_id in the token).
    visitor = Client(http, identity_provider, citizen())
    lome = Client(http, identity_provider, officer("tg-lome"))
    paris = Client(http, identity_provider, officer("fr-paris"))

    # Services for registry members only are refused to a visitor, at once.
    refused = await visitor.create("consular_card")
    assert refused.status_code == 422
    assert refused.json()["reason"] == "not_registered"

    draft = ok(await visitor.create("e_visa"), 201)
    assert draft["applicant_id"] is None
    assert draft["embassy_id"] == "tg-lome"
    app_id = draft["id"]
    await visitor.upload_required(app_id, "e_visa")
    submitted = ok(await visitor.act(app_id, "submit", answers=answers_for("e_visa")))
    due = datetime.fromisoformat(submitted["due_at"]) - datetime.fromisoformat(
        submitted["submitted_at"]
    )
    assert due == timedelta(days=3)

    # Only the visitor and the processing post see it.
    assert (await Client(http, identity_provider, citizen()).get(app_id)).status_code == 404
    assert (await paris.get(app_id)).status_code == 404
    assert [a["id"] for a in ok(await visitor.queue())["items"]] == [app_id]

    ok(await lome.act(app_id, "start_review"))
    await pay_fee(lome.http, lome.headers, app_id)
    decided = ok(await lome.act(app_id, "approve"))
    reference = decided["reference"]
    assert reference.startswith(f"EV-{datetime.now(UTC).year}-")
    ok(await lome.act(app_id, "issue"))
    seen = ok(await visitor.get(app_id))
    assert (seen["status"], seen["reference"]) == ("issued", reference)
    assert seen["allowed_actions"] == []

    # And the e-visa's signed credential (test_credentials.py).
    records = await published_events(consular, topic_prefix, expect=5)
    events = [
        e
        for e in map(event_of, records)
        if e[0] not in ("consular.credential.issued", "consular.payment.recorded")
    ]
    assert len(events) == 4
    assert [t for t, _ in events] == [
        "consular.application.submitted",
        *["consular.application.status-changed"] * 3,
    ]
    first = events[0][1]
    assert first["applicant_id"] is None
    assert first["subject_id"] == app_id
    assert first["answers"]["passport_number"] == "X1234567"
    assert events[2][1]["reference"] == reference

    # The officer's reads and decisions are audited against the application.
    async with consular.sessions() as session:
        audited = set(
            (
                await session.execute(
                    select(audit_log.c.action).where(
                        audit_log.c.record_id == UUID(app_id),
                        audit_log.c.actor_subject == lome.persona.subject,
                    )
                )
            ).scalars()
        )
    # (read, record_payment: the officer read the fee owed and recorded its payment)
    assert audited == {"start_review", "read", "record_payment", "approve", "issue"}


async def test_a_repeated_creation_with_the_same_idempotency_key_answers_the_first(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    person = await applicant(consular, http, identity_provider)
    headers = {**person.headers, "Idempotency-Key": "form-42"}
    body = {"service_type": "passport_preparation", "answers": {"height_cm": 180}}
    first = await http.post("/applications", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await http.post("/applications", json=body, headers=headers)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    other = await http.post(
        "/applications", json={**body, "answers": {"height_cm": 181}}, headers=headers
    )
    assert other.status_code == 409
    assert other.headers["content-type"].startswith("application/problem+json")
    # The key is the account's: another person's same key is another application.
    someone = await applicant(consular, http, identity_provider)
    theirs = await http.post(
        "/applications", json=body, headers={**someone.headers, "Idempotency-Key": "form-42"}
    )
    assert theirs.status_code == 201
    assert theirs.json()["id"] != first.json()["id"]
    assert ok(await person.queue())["total"] == 1
