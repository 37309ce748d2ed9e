"""Difficulty reports end to end on the real PostgreSQL and Kafka: routing to the
embassy covering the country (another embassy's officer gets 404), messages both ways,
forbidden transitions (409 naming the allowed ones), SLA escalation to the ministry,
consent recorded when a focal point files on a person's behalf, the observatory's
counts with small cells suppressed, the ministry's categories, 422 problem details for
malformed bodies, and the events read back from the topic."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from consular_testing import new_member_id
from sqlalchemy import select

from consular.bootstrap import run_reports_sla_once
from consular.resources import Consular
from consular.tables import audit_log, outbox
from diaspora_devstack.testing import publish_outbox, read_topic
from diaspora_events.topics import CONSULAR_REPORTS
from diaspora_identity.testing import LocalIssuer, Persona, analyst, citizen, coordinator, officer

pytestmark = pytest.mark.integration

DESCRIPTION = "The prefecture refuses to renew my residence permit without a consular card."


class Caller:
    def __init__(self, http: httpx.AsyncClient, issuer: LocalIssuer, persona: Persona) -> None:
        self.http = http
        self.headers = issuer.headers(persona)
        self.persona = persona

    async def file(self, **body: Any) -> httpx.Response:
        payload = {"category": "residence", "country": "FR", "description": DESCRIPTION, **body}
        return await self.http.post("/reports", json=payload, headers=self.headers)

    async def get(self, report_id: str) -> httpx.Response:
        return await self.http.get(f"/reports/{report_id}", headers=self.headers)

    async def queue(self, **params: Any) -> httpx.Response:
        return await self.http.get("/reports", params=params, headers=self.headers)

    async def act(self, report_id: str, action: str, reason: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"action": action}
        if reason is not None:
            body["reason"] = reason
        return await self.http.post(
            f"/reports/{report_id}/transitions", json=body, headers=self.headers
        )

    async def say(self, report_id: str, text: str) -> httpx.Response:
        return await self.http.post(
            f"/reports/{report_id}/messages", json={"body": text}, headers=self.headers
        )


def ok(answer: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def report_events(consular: Consular, topic_prefix: str, expect: int) -> list[Any]:
    """Publish the outbox as the relay does, then read the reports topic back."""
    await publish_outbox(
        consular.engine,
        outbox,
        kafka_bootstrap=consular.settings.kafka_bootstrap,
        topic_prefix=topic_prefix,
        client_id="consular-test-relay",
    )
    records = await read_topic(
        consular.settings.kafka_bootstrap, topic_prefix + CONSULAR_REPORTS.name, expect=expect
    )
    return [
        ({k: v.decode() for k, v in r.headers}["ce_type"], json.loads(r.value))
        for r in sorted(records, key=lambda r: (r.timestamp, r.offset))
    ]


async def test_a_report_goes_to_the_embassy_of_the_country_and_no_other(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer, topic_prefix: str
) -> None:
    # She lives in France; the difficulty happened in Germany: Berlin's focal point has it.
    person = Caller(http, identity_provider, citizen(member_id=new_member_id()))
    berlin = Caller(http, identity_provider, officer("de-berlin"))
    paris = Caller(http, identity_provider, officer("fr-paris"))
    ministry = Caller(http, identity_provider, coordinator())
    stranger = Caller(http, identity_provider, citizen(member_id=new_member_id()))

    filed = ok(
        await person.file(
            category="detention",
            country="de",
            attachments=[{"reference": "upload-pending-1", "name": "arrest-notice.pdf"}],
        ),
        201,
    )
    report_id = filed["id"]
    assert filed["embassy_id"] == "de-berlin"
    assert filed["country"] == "DE"
    assert filed["status"] == "open"
    assert filed["reporter_id"] == str(person.persona.member_id)
    assert filed["filed_on_behalf"] is False
    assert filed["consent"] is None
    assert filed["allowed_actions"] == ["withdraw"]
    # Detention: the category's 2 target days.
    due = datetime.fromisoformat(filed["due_at"]) - datetime.fromisoformat(filed["created_at"])
    assert due == timedelta(days=2)

    # Berlin's focal point sees it in the queue and reads it (audited, record = reporter).
    queue = ok(await berlin.queue())
    assert [r["id"] for r in queue["items"]] == [report_id]
    seen = ok(await berlin.get(report_id))
    assert seen["description"] == DESCRIPTION
    assert seen["attachments"] == [{"reference": "upload-pending-1", "name": "arrest-notice.pdf"}]
    assert seen["allowed_actions"] == ["start", "request_information", "resolve"]
    assert ok(await ministry.get(report_id))["id"] == report_id
    assert ok(await person.get(report_id))["id"] == report_id

    # For Paris's officer, and for another citizen, it does not exist.
    assert (await paris.get(report_id)).status_code == 404
    assert (await paris.act(report_id, "start")).status_code == 404
    assert (await paris.say(report_id, "Hello")).status_code == 404
    assert ok(await paris.queue())["total"] == 0
    assert (await stranger.get(report_id)).status_code == 404
    assert ok(await stranger.queue())["total"] == 0

    async with consular.sessions() as session:
        audited = (
            await session.execute(
                select(audit_log.c.actor_subject, audit_log.c.action, audit_log.c.resource).where(
                    audit_log.c.record_id == person.persona.member_id
                )
            )
        ).all()
    readers = {(subject, action) for subject, action, _resource in audited}
    assert (berlin.persona.subject, "list") in readers
    assert (berlin.persona.subject, "read") in readers
    assert (ministry.persona.subject, "read") in readers
    assert all(resource == "consular_report" for *_x, resource in audited)
    # The reporter's own reads, and the 404s, leave no entry.
    assert not any(s in (person.persona.subject, paris.persona.subject) for s, _a in readers)

    events = await report_events(consular, topic_prefix, expect=1)
    kind, data = events[0]
    assert kind == "consular.report.filed"
    assert data["report_id"] == report_id
    assert data["embassy_id"] == "de-berlin"
    assert data["category"] == "detention"
    assert data["country"] == "DE"
    assert data["subject_id"] == str(person.persona.member_id)
    assert data["filed_on_behalf"] is False
    assert data["account"] == DESCRIPTION


async def test_messages_go_both_ways_and_the_reporters_answer_resumes_the_case(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer, topic_prefix: str
) -> None:
    person = Caller(http, identity_provider, citizen(member_id=new_member_id()))
    paris = Caller(http, identity_provider, officer("fr-paris"))
    report_id = ok(await person.file(), 201)["id"]

    ok(await paris.act(report_id, "start"))
    asked = ok(
        await paris.act(report_id, "request_information", "Which prefecture, and since when?")
    )
    assert asked["status"] == "waiting_for_reporter"
    # While the reporter is waited for, the SLA clock stops.
    assert asked["allowed_actions"] == ["resume", "resolve"]
    ok(await paris.say(report_id, "Please also tell us your permit's number."), 201)

    mine = ok(await person.get(report_id))
    assert [(m["author_side"], m["author_subject"]) for m in mine["messages"]] == [
        ("staff", None)  # the focal point's identity is not shown to the reporter
    ]
    answered = ok(await person.say(report_id, "Bobigny, since September; number 123."), 201)
    assert answered["status"] == "in_progress"
    assert answered["history"][-1]["action"] == "resume"
    assert answered["history"][-1]["actor_role"] == "reporter"

    theirs = ok(await paris.get(report_id))
    assert [(m["author_side"], m["body"]) for m in theirs["messages"]] == [
        ("staff", "Please also tell us your permit's number."),
        ("reporter", "Bobigny, since September; number 123."),
    ]
    assert theirs["messages"][0]["author_subject"] == paris.persona.subject

    resolved = ok(await paris.act(report_id, "resolve", "Permit renewed after our letter."))
    assert resolved["status"] == "resolved"
    assert resolved["resolved_at"] is not None
    closed = ok(await person.act(report_id, "close"))
    assert closed["status"] == "closed"
    late = await person.say(report_id, "Thank you")
    assert late.status_code == 409, late.text

    events = await report_events(consular, topic_prefix, expect=8)
    kinds = [(k, d.get("author_side") or d.get("action")) for k, d in events]
    assert kinds == [
        ("consular.report.filed", None),
        ("consular.report.status-changed", "start"),
        ("consular.report.status-changed", "request_information"),
        ("consular.report.message-posted", "staff"),
        ("consular.report.message-posted", "reporter"),
        ("consular.report.status-changed", "resume"),
        ("consular.report.status-changed", "resolve"),
        ("consular.report.status-changed", "close"),
    ]
    # The message events carry no text.
    assert all("body" not in d for k, d in events if k == "consular.report.message-posted")


async def test_a_forbidden_transition_is_409_naming_the_allowed_ones(
    http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    person = Caller(http, identity_provider, citizen(member_id=new_member_id()))
    paris = Caller(http, identity_provider, officer("fr-paris"))
    report_id = ok(await person.file(), 201)["id"]

    refused = await paris.act(report_id, "close")
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["status_now"] == "open"
    assert problem["allowed"] == ["start", "request_information", "resolve"]
    # The reporter cannot resolve their own report: their allowed ones are named.
    mine = (await person.act(report_id, "resolve", "done")).json()
    assert mine["allowed"] == ["withdraw"]
    # Resolving needs a note.
    missing = await paris.act(report_id, "resolve")
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "reason"
    # An analyst has no hand in it at all.
    assert (
        await Caller(http, identity_provider, analyst()).act(report_id, "start")
    ).status_code == 403


async def test_overdue_reports_are_escalated_once_to_the_ministry(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer, topic_prefix: str
) -> None:
    person = Caller(http, identity_provider, citizen(member_id=new_member_id()))
    paris = Caller(http, identity_provider, officer("fr-paris"))
    ministry = Caller(http, identity_provider, coordinator())
    late = ok(await person.file(category="detention"), 201)["id"]  # 2 days
    waiting = ok(await person.file(category="detention"), 201)["id"]
    ok(await paris.act(waiting, "request_information", "Where are you held?"))
    on_time = ok(await person.file(category="other"), 201)["id"]  # 30 days

    now = datetime.now(UTC)
    assert await run_reports_sla_once(consular, now) == []
    assert ok(await ministry.queue(escalated="true"))["total"] == 0

    three_days_on = now + timedelta(days=3)
    assert await run_reports_sla_once(consular, three_days_on) == [UUID(late)]
    assert await run_reports_sla_once(consular, three_days_on + timedelta(minutes=1)) == []

    flagged = ok(await ministry.queue(escalated="true"))["items"]
    assert [r["id"] for r in flagged] == [late]
    assert flagged[0]["escalated_at"] is not None
    history = ok(await ministry.get(late))["history"]
    assert history[-1]["action"] == "escalate"
    assert history[-1]["actor_role"] == "system"
    # The ministry may act on an escalated case.
    assert ok(await ministry.act(late, "start"))["status"] == "in_progress"
    assert {r["id"] for r in ok(await ministry.queue(escalated="false"))["items"]} == {
        waiting,
        on_time,
    }

    events = await report_events(consular, topic_prefix, expect=6)
    escalations = [d for k, d in events if k == "consular.report.escalated"]
    assert len(escalations) == 1
    assert escalations[0]["report_id"] == late
    assert escalations[0]["embassy_id"] == "fr-paris"
    assert escalations[0]["status"] == "open"
    assert "account" not in escalations[0]


async def test_a_focal_point_files_on_a_persons_behalf_with_their_consent(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer, topic_prefix: str
) -> None:
    member_id = new_member_id()
    paris = Caller(http, identity_provider, officer("fr-paris"))
    given_at = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    behalf = {
        "member_id": str(member_id),
        "consent": {"method": "phone", "given_at": given_at.isoformat()},
    }
    filed = ok(await paris.file(category="work_rights", on_behalf_of=behalf), 201)
    assert filed["reporter_id"] == str(member_id)
    assert filed["filed_on_behalf"] is True
    assert filed["consent"]["method"] == "phone"
    assert datetime.fromisoformat(filed["consent"]["given_at"]) == given_at
    assert filed["filed_by_subject"] == paris.persona.subject
    assert filed["history"][0]["reason"] == "filed on the person's behalf, with their consent"

    # The person follows it with their own account (their member id), and answers.
    person = Caller(http, identity_provider, citizen(member_id=member_id))
    theirs = ok(await person.get(filed["id"]))
    assert theirs["consent"]["method"] == "phone"
    assert theirs["filed_by_subject"] is None
    assert [r["id"] for r in ok(await person.queue())["items"]] == [filed["id"]]
    ok(await person.say(filed["id"], "Thank you for filing this for me."), 201)

    # Only within the officer's jurisdiction, and only by a focal point.
    elsewhere = await paris.file(country="DE", on_behalf_of=behalf)
    assert elsewhere.status_code == 422
    assert elsewhere.json()["errors"][0] == {
        "field": "country",
        "message": "is covered by de-berlin, not by your embassy",
        "code": "outside_jurisdiction",
    }
    not_staff = await person.file(on_behalf_of=behalf)
    assert not_staff.status_code == 422
    assert not_staff.json()["errors"][0]["field"] == "on_behalf_of"
    no_consent = await paris.file()
    assert no_consent.status_code == 422
    assert no_consent.json()["errors"][0]["field"] == "on_behalf_of"

    events = await report_events(consular, topic_prefix, expect=2)
    filed_event = events[0][1]
    assert events[0][0] == "consular.report.filed"
    assert filed_event["filed_on_behalf"] is True
    assert filed_event["consent_method"] == "phone"
    assert datetime.fromisoformat(filed_event["consent_given_at"]) == given_at
    assert filed_event["reporter_id"] == str(member_id)


async def test_counts_by_country_category_and_month_suppress_small_cells(
    http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    person = Caller(http, identity_provider, citizen(member_id=new_member_id()))
    for country, n in (("FR", 6), ("SN", 5), ("BE", 2)):
        for _ in range(n):
            ok(await person.file(country=country, category="documents"), 201)

    # Without a token: the published figures. BE (2) is under the threshold; SN (5),
    # the smallest shown cell, goes with it, or BE = total - FR - SN would give it away.
    public = ok(await http.get("/reports/statistics", params={"by": "country"}))
    assert public["threshold"] == 5
    assert public["total"] == 13
    cells = {c["country"]: (c["reports"], c["suppressed"]) for c in public["cells"]}
    assert cells == {"BE": (None, True), "FR": (6, False), "SN": (None, True)}
    assert (await http.get("/reports/statistics", params={"by": "country"})).headers[
        "cache-control"
    ] == "public, max-age=60"

    # Exact counts are for the ministry; an analyst gets the suppressed ones only.
    ministry = Caller(http, identity_provider, coordinator())
    exact = ok(
        await http.get(
            "/reports/statistics",
            params={"by": "country", "exact": "true"},
            headers=ministry.headers,
        )
    )
    assert {c["country"]: c["reports"] for c in exact["cells"]} == {"BE": 2, "FR": 6, "SN": 5}
    statistician = Caller(http, identity_provider, analyst())
    refused = await http.get(
        "/reports/statistics", params={"exact": "true"}, headers=statistician.headers
    )
    assert refused.status_code == 403
    suppressed = ok(await http.get("/reports/statistics", headers=statistician.headers))
    assert {c["country"]: c["reports"] for c in suppressed["cells"]}["BE"] is None

    # By category and month: one cell, 13 reports, this month.
    month = datetime.now(UTC).strftime("%Y-%m")
    crossed = ok(
        await http.get("/reports/statistics", params=[("by", "category"), ("by", "month")])
    )
    assert crossed["cells"] == [
        {
            "country": None,
            "category": "documents",
            "month": month,
            "reports": 13,
            "suppressed": False,
        }
    ]
    # A filter down to the small cell hides it, total included.
    belgium = ok(await http.get("/reports/statistics", params={"country": "BE"}))
    assert belgium["total"] is None
    assert belgium["cells"] == [
        {"country": "BE", "category": None, "month": None, "reports": None, "suppressed": True}
    ]
    bad = await http.get("/reports/statistics", params={"by": "sex"})
    assert bad.status_code == 422


async def test_malformed_bodies_are_422_problem_details(
    http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    person = Caller(http, identity_provider, citizen(member_id=new_member_id()))
    paris = Caller(http, identity_provider, officer("fr-paris"))
    cases: list[tuple[Caller, dict[str, Any], str]] = [
        (person, {"country": "XX"}, "country"),
        (person, {"country": 12}, "country"),
        (person, {"description": "short"}, "description"),
        (person, {"category": "Not A Code"}, "category"),
        (person, {"category": "unknown_one"}, "category"),
        (person, {"attachments": [{"ref": "x"}]}, "attachments"),
        (person, {"surprise": True}, "surprise"),
        (
            paris,
            {
                "on_behalf_of": {
                    "member_id": str(new_member_id()),
                    "consent": {"method": "telepathy", "given_at": "2026-01-01T00:00:00Z"},
                }
            },
            "on_behalf_of",
        ),
        (
            paris,
            {
                "on_behalf_of": {
                    "member_id": str(new_member_id()),
                    "consent": {"method": "phone", "given_at": "2099-01-01T00:00:00Z"},
                }
            },
            "on_behalf_of",
        ),
        (
            paris,
            {
                "on_behalf_of": {
                    "member_id": str(new_member_id()),
                    "consent": {"method": "phone", "given_at": "2026-01-01T00:00:00"},
                }
            },
            "on_behalf_of",
        ),
    ]
    for caller, body, field in cases:
        answer = await caller.file(**body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        text = json.dumps(answer.json())
        assert field in text, (body, text)
    not_json = await http.post(
        "/reports",
        content=b"{not json",
        headers={**person.headers, "content-type": "application/json"},
    )
    assert not_json.status_code == 422
    assert not_json.headers["content-type"].startswith("application/problem+json")
    report_id = ok(await person.file(), 201)["id"]
    empty = await person.say(report_id, "")
    assert empty.status_code == 422
    unknown_action = await paris.act(report_id, "escalate")
    assert unknown_action.status_code == 422


async def test_the_ministry_edits_the_categories_as_versions(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    listed = ok(await http.get("/reports/categories"))["items"]
    assert [c["code"] for c in listed] == [
        "civil_status",
        "documents",
        "residence",
        "work_rights",
        "detention",
        "discrimination",
        "other",
    ]
    assert listed[4]["labels"] == {"fr": "Détention", "en": "Detention"}

    ministry = Caller(http, identity_provider, coordinator())
    edit = {
        "labels": {"fr": "Autre difficulté", "en": "Other difficulty"},
        "active": False,
        "target_days": 20,
        "position": 70,
    }
    stale = await http.put(
        "/reports/categories/other", json=edit, headers={**ministry.headers, "If-Match": '"7"'}
    )
    assert stale.status_code == 412
    changed = await http.put(
        "/reports/categories/other", json=edit, headers={**ministry.headers, "If-Match": '"1"'}
    )
    body = ok(changed)
    assert body["version"] == 2
    assert changed.headers["etag"] == '"2"'
    # Retired: not offered any more, and refused for a new report.
    assert "other" not in [c["code"] for c in ok(await http.get("/reports/categories"))["items"]]
    person = Caller(http, identity_provider, citizen(member_id=new_member_id()))
    assert (await person.file(category="other")).status_code == 422
    # A new category, by the ministry only.
    new = {"labels": {"fr": "Succession", "en": "Inheritance"}, "target_days": 30}
    assert (
        await http.put("/reports/categories/inheritance", json=new, headers=person.headers)
    ).status_code == 403
    ok(await http.put("/reports/categories/inheritance", json=new, headers=ministry.headers))
    assert ok(await person.file(category="inheritance"), 201)["category"] == "inheritance"

    async with consular.sessions() as session:
        audited = (
            await session.execute(
                select(audit_log.c.resource, audit_log.c.actor_subject).where(
                    audit_log.c.resource == "consular_report_category"
                )
            )
        ).all()
    assert len(audited) == 2
    assert {subject for _r, subject in audited} == {ministry.persona.subject}
