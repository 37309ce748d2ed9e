"""Cases on the real PostgreSQL and Kafka: a laissez-passer issued by consular opens a
reception case through the worker; a returnee declares their return; the state machine
answers 409 naming what is allowed; the follow-up job flags overdue follow-ups once;
malformed bodies are 422 problems; the events reach the topic."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from returnees_testing import (
    known_person,
    new_member_id,
    profile,
    publish,
    running_worker,
)
from sqlalchemy import func, select

from diaspora_devstack.testing import publish_outbox, read_topic, wait_until
from diaspora_events.contracts import LaissezPasserIssuedV1
from diaspora_events.topics import CONSULAR_APPLICATIONS, RETURNEES_CASES
from diaspora_identity.testing import LocalIssuer, case_worker, citizen
from returnees.bootstrap import run_follow_ups_once
from returnees.cases.tables import cases, follow_ups
from returnees.resources import Returnees
from returnees.tables import outbox

pytestmark = pytest.mark.integration


async def cases_of(service: Returnees, member_id: UUID) -> list[dict[str, Any]]:
    async with service.sessions() as session:
        rows = await session.execute(select(cases).where(cases.c.member_id == member_id))
        return [dict(r) for r in rows.mappings()]


async def test_a_laissez_passer_issued_opens_one_reception_case_within_seconds(
    returnees: Returnees, kafka_bootstrap: str, topic_prefix: str
) -> None:
    member_id = new_member_id()
    await known_person(returnees, member_id, profile())
    application_id = new_member_id()
    issued = LaissezPasserIssuedV1(
        application_id=application_id,
        applicant_id=member_id,
        embassy_id="ly-tripoli",
        issued_at=datetime.now(UTC),
        travel_date=date(2027, 1, 10),
        expected_return_date=date(2027, 1, 12),
    )
    # The same issue twice under another event id too (a replay): still one case.
    replay = issued.model_copy()
    topic = topic_prefix + CONSULAR_APPLICATIONS.name
    async with running_worker(returnees):
        await publish(kafka_bootstrap, CONSULAR_APPLICATIONS, topic, issued, replay, times=2)
        await wait_until(
            lambda: _has_case(returnees, member_id), timeout=20, message="reception case"
        )
    [case] = await cases_of(returnees, member_id)
    assert case["origin"] == "laissez_passer"
    assert case["status"] == "declared"
    assert case["application_id"] == application_id
    assert case["expected_arrival"] == date(2027, 1, 12)
    async with returnees.sessions() as session:
        total = await session.scalar(
            select(func.count()).select_from(cases).where(cases.c.application_id == application_id)
        )
    assert total == 1


async def _has_case(service: Returnees, member_id: UUID) -> bool:
    return bool(await cases_of(service, member_id))


async def test_a_returnee_declares_their_return_from_abroad(
    returnees: Returnees, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    member_id = new_member_id()
    await known_person(returnees, member_id, profile(given_name="Afi"))
    me = identity_provider.headers(citizen("afi", member_id=member_id))
    declared = await http.post(
        "/cases",
        headers=me,
        json={"expected_arrival": "2027-02-01", "country_from": "LY", "reason": "voluntary"},
    )
    assert declared.status_code == 201, declared.text
    body = declared.json()
    assert (body["origin"], body["status"], body["member_id"]) == (
        "pre_return",
        "declared",
        str(member_id),
    )
    # The returnee sees it among their own; nobody else's.
    mine = await http.get("/cases", headers=me)
    assert [c["id"] for c in mine.json()["items"]] == [body["id"]]
    other = identity_provider.headers(citizen("someone", member_id=new_member_id()))
    assert (await http.get(f"/cases/{body['id']}", headers=other)).status_code == 404
    # Nobody declares someone else's return; a citizen without a record cannot declare.
    for_other = await http.post("/cases", headers=me, json={"member_id": str(new_member_id())})
    assert for_other.status_code == 403, for_other.text
    unregistered = identity_provider.headers(citizen("no-record"))
    refused = await http.post("/cases", headers=unregistered, json={})
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")


async def test_the_state_machine_answers_409_naming_the_allowed_actions(
    returnees: Returnees, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    worker = case_worker("cw-ablavi")
    me = identity_provider.headers(worker)
    opened = await http.post("/cases", headers=me, json={"expected_arrival": "2027-03-01"})
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["id"]
    assert opened.json()["status"] == "declared"
    plan = {"milestones": [{"title": "Formation", "due_on": "2027-06-01"}]}
    # Not assigned: no work on it.
    assert (await http.post(f"/cases/{case_id}/plan", headers=me, json=plan)).status_code == 403
    # A case worker takes a case for themselves, never hands it to someone else.
    handed = await http.put(f"/cases/{case_id}/assignee", headers=me, json={"case_worker": "x"})
    assert handed.status_code == 403, handed.text
    assigned = await http.put(
        f"/cases/{case_id}/assignee", headers=me, json={"case_worker": worker.subject}
    )
    assert assigned.status_code == 200, assigned.text
    refused = await http.post(f"/cases/{case_id}/plan", headers=me, json=plan)
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert problem["allowed"] == ["intake", "cancel"]
    assert "intake" in problem["detail"]
    intake = await http.post(
        f"/cases/{case_id}/intake",
        headers=me,
        json={"return_date": "2027-03-02", "country_from": "LY", "reason": "expelled"},
    )
    assert intake.status_code == 200, intake.text
    assert intake.json()["status"] == "open"
    assert [f["due_on"] for f in intake.json()["follow_ups"]] == [
        "2027-06-02",
        "2027-09-02",
        "2028-03-02",
    ]
    needs = {
        "needs": [
            {"area": "housing", "priority": "high", "met": False},
            {"area": "employment", "priority": "medium", "met": False},
        ]
    }
    assessed = await http.post(f"/cases/{case_id}/needs", headers=me, json=needs)
    assert assessed.json()["status"] == "assessed"
    planned = await http.post(f"/cases/{case_id}/plan", headers=me, json=plan)
    assert planned.json()["status"] == "in_plan"
    closed = await http.post(
        f"/cases/{case_id}/close", headers=me, json={"outcome": "reintegrated"}
    )
    assert closed.json()["status"] == "closed"
    again = await http.post(f"/cases/{case_id}/close", headers=me, json={"outcome": "other"})
    assert again.status_code == 409
    assert again.json()["allowed"] == []


async def test_the_follow_up_job_flags_overdue_follow_ups_once(
    returnees: Returnees, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    me = identity_provider.headers(case_worker("cw-kodjo"))
    returned = (datetime.now(UTC) - timedelta(days=200)).date()
    opened = await http.post(
        "/cases", headers=me, json={"return_date": returned.isoformat(), "country_from": "NE"}
    )
    assert opened.status_code == 201, opened.text
    case_id = UUID(opened.json()["id"])
    assert opened.json()["status"] == "open"
    now = datetime.now(UTC)
    flagged = await run_follow_ups_once(returnees, now)
    # 3 months (about 90 days) and 6 months (about 182 days) are past; 12 months is not.
    assert sorted(m for c, m in flagged if c == case_id) == [3, 6]
    assert [m for c, m in await run_follow_ups_once(returnees, now) if c == case_id] == []
    async with returnees.sessions() as session:
        rows = (
            await session.execute(
                select(follow_ups.c.months, follow_ups.c.overdue_at).where(
                    follow_ups.c.case_id == case_id
                )
            )
        ).all()
    assert {m: at is not None for m, at in rows} == {3: True, 6: True, 12: False}
    view = (await http.get(f"/cases/{case_id}", headers=me)).json()
    assert [f["overdue"] for f in view["follow_ups"]] == [True, True, False]


async def test_malformed_bodies_are_422_problems(
    http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    me = identity_provider.headers(case_worker())
    for body in (
        {"country_from": "Libya"},
        {"reason": "bored"},
        {"vulnerabilities": ["unknown"]},
        {"return_date": "not a date"},
        {"unexpected": 1},
    ):
        answer = await http.post("/cases", headers=me, json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["status"] == 422
    broken = await http.post(
        "/cases", headers={**me, "content-type": "application/json"}, content=b"{not json"
    )
    assert broken.status_code == 422
    assert broken.headers["content-type"].startswith("application/problem+json")


async def test_the_case_events_reach_the_topic(
    returnees: Returnees,
    http: httpx.AsyncClient,
    identity_provider: LocalIssuer,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    worker = case_worker("cw-sena")
    me = identity_provider.headers(worker)
    member_id = new_member_id()
    opened = await http.post(
        "/cases",
        headers=me,
        json={"member_id": str(member_id), "return_date": "2027-01-05", "country_from": "DZ"},
    )
    case_id = opened.json()["id"]
    await http.put(f"/cases/{case_id}/assignee", headers=me, json={"case_worker": worker.subject})
    await http.post(
        f"/cases/{case_id}/close", headers=me, json={"outcome": "lost_contact", "notes": "x"}
    )
    await publish_outbox(
        returnees.engine,
        outbox,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        client_id="returnees-test-relay",
    )
    records = await read_topic(kafka_bootstrap, topic_prefix + RETURNEES_CASES.name, expect=3)
    mine = [r for r in records if r.key.decode() == case_id]
    types = [dict(r.headers)["ce_type"].decode() for r in mine]
    assert types == [
        "returnees.case.opened",
        "returnees.case.assigned",
        "returnees.case.status-changed",
    ]
    opened_event = json.loads(mine[0].value)
    assert opened_event["member_id"] == str(member_id)
    assert opened_event["country_from"] == "DZ"
    changed = json.loads(mine[2].value)
    assert (changed["from_status"], changed["to_status"], changed["outcome"]) == (
        "open",
        "closed",
        "lost_contact",
    )
    # Never a sensitive field or a free text in an event.
    assert all(b"notes" not in r.value for r in mine)
