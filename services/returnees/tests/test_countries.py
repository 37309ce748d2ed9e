"""Country lists: labour-demand countries (ISCO-08 codes checked, history, public once
published) and the watchlist (evidence from consular's difficulty reports, four-eyes
review, 409 naming the allowed transitions, the advisory event on publication), on the
real database and broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from uuid_utils.compat import uuid7

from diaspora_devstack.testing import publish_outbox, read_topic, wait_until
from diaspora_events.cloudevents import encode, headers_to_kafka
from diaspora_events.contracts import Event
from diaspora_events.contracts.consular import ReportFiledV1
from diaspora_events.topics import CONSULAR_REPORTS, RETURNEES_ADVISORIES
from diaspora_identity.testing import LocalIssuer, Persona
from returnees.cases import service as cases
from returnees.countries.tables import report_counts
from returnees.entrypoints.worker import run
from returnees.resources import Returnees
from returnees.tables import outbox

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


def bearer(issuer: LocalIssuer, subject: str, *roles: str) -> dict[str, str]:
    return {"authorization": f"Bearer {issuer.token(Persona(subject=subject, roles=roles))}"}


def labour_body(**overrides: Any) -> dict[str, Any]:
    return {
        "sectors": ["construction", "hospitality"],
        "occupations": ["7112", "5120"],
        "sources": [{"title": "Accord bilatéral (projet)", "url": "https://example.org/a"}],
        "last_reviewed_on": "2026-11-30",
        "notes": "Visas de travail délivrés par quotas.",
        **overrides,
    }


async def test_labour_demand_checks_isco_codes_keeps_history_and_is_public_once_published(
    http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    analyst = bearer(identity_provider, "analyst-afi", "analyst")
    coordinator = bearer(identity_provider, "coord-yao", "ministry_coordinator")

    wrong = await http.put(
        "/countries/labour-demand/SA",
        json=labour_body(occupations=["7112", "9999", "12a"]),
        headers=analyst,
    )
    assert wrong.status_code == 422, wrong.text
    assert wrong.headers["content-type"].startswith(PROBLEM)
    assert "occupations[1]: '9999' is not an ISCO-08 code" in wrong.text
    assert "occupations[2]" in wrong.text
    malformed = await http.put(
        "/countries/labour-demand/SA",
        content=b'{"sectors": "construction", ',
        headers={**analyst, "content-type": "application/json"},
    )
    assert malformed.status_code == 422
    assert malformed.headers["content-type"].startswith(PROBLEM)
    unknown = await http.put("/countries/labour-demand/XX", json=labour_body(), headers=analyst)
    assert unknown.status_code == 422
    assert unknown.headers["content-type"].startswith(PROBLEM)
    citizen = bearer(identity_provider, "kossi", "citizen")
    refused = await http.put("/countries/labour-demand/SA", json=labour_body(), headers=citizen)
    assert refused.status_code == 403
    anonymous = await http.put("/countries/labour-demand/SA", json=labour_body())
    assert anonymous.status_code == 401

    first = await http.put(
        "/countries/labour-demand/SA", json=labour_body(), headers={**analyst, "if-match": '"0"'}
    )
    assert first.status_code == 200, first.text
    assert first.headers["etag"] == '"1"'
    assert [o["code"] for o in first.json()["occupations"]] == ["5120", "7112"]
    # A draft: nobody without the edit grant sees it.
    assert (await http.get("/countries/labour-demand")).json() == {"items": []}
    assert (await http.get("/countries/labour-demand/SA")).status_code == 404

    second = await http.put(
        "/countries/labour-demand/SA",
        json=labour_body(published=True, sectors=["construction"]),
        headers={**coordinator, "if-match": '"1"'},
    )
    assert second.status_code == 200
    assert second.headers["etag"] == '"2"'
    stale = await http.put(
        "/countries/labour-demand/SA", json=labour_body(), headers={**analyst, "if-match": '"1"'}
    )
    assert stale.status_code == 412

    public = (await http.get("/countries/labour-demand")).json()["items"]
    assert [(p["country"], p["sectors"], p["published"]) for p in public] == [
        ("SA", ["construction"], True)
    ]
    assert "updated_by" not in public[0]
    assert "notes" not in public[0]
    assert {o["code"]: o["label_en"] for o in public[0]["occupations"]}["7112"]

    history = await http.get("/countries/labour-demand/SA/history", headers=analyst)
    assert history.status_code == 200
    versions = history.json()["versions"]
    assert [(v["version"], v["changed_by"]) for v in versions] == [
        (2, "coord-yao"),
        (1, "analyst-afi"),
    ]
    assert versions[1]["snapshot"]["sectors"] == ["construction", "hospitality"]
    assert (await http.get("/countries/labour-demand/SA/history")).status_code == 401


def filed(country: str, category: str) -> ReportFiledV1:
    reporter = uuid7()
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    return ReportFiledV1(
        report_id=uuid7(),
        reporter_id=reporter,
        subject_id=reporter,
        category=category,
        country=country,
        embassy_id="tg-lome",
        filed_at=at,
        due_at=at + timedelta(days=10),
        filed_on_behalf=False,
        account="Mon passeport a été confisqué par mon employeur.",
    )


async def publish(bootstrap: str, topic: str, *events: Event, times: int = 1) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for event in events:
            _id, headers, value = encode(event, source="/test")
            for _ in range(times):
                await producer.send_and_wait(
                    topic,
                    value=value,
                    key=event.aggregate_id().encode(),
                    headers=headers_to_kafka(headers),
                )
    finally:
        await producer.stop()


@pytest.fixture
async def worker(returnees: Returnees) -> AsyncIterator[Returnees]:
    stop = asyncio.Event()
    task = asyncio.create_task(run(returnees, stop))
    yield returnees
    stop.set()
    await asyncio.wait_for(task, timeout=30)


async def counted(service: Returnees) -> dict[tuple[str, str], int]:
    async with service.sessions() as session:
        rows = (await session.execute(select(report_counts))).all()
    return {(r.country, r.category): r.reports for r in rows}


def proposal(country: str = "LY") -> dict[str, Any]:
    return {
        "country": country,
        "level": "avoid",
        "title": {"fr": "Risques graves pour les travailleurs", "en": "Serious risks for workers"},
        "text": {
            "fr": "Passeports confisqués et salaires impayés signalés.",
            "en": "Confiscated passports and unpaid wages are reported.",
        },
        "rationale": "Signalements répétés depuis septembre.",
        "sources": [{"title": "Rapport OIT 2026", "url": "https://example.org/ilo"}],
    }


async def test_a_watchlist_entry_rests_on_reports_and_needs_a_second_reviewer(
    worker: Returnees,
    http: httpx.AsyncClient,
    identity_provider: LocalIssuer,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    reports = [filed("LY", "work_rights") for _ in range(6)] + [
        filed("LY", "detention"),
        filed("FR", "documents"),
    ]
    # Delivered twice, as after a relay crash: counted once each.
    await publish(kafka_bootstrap, topic_prefix + CONSULAR_REPORTS.name, *reports, times=2)
    expected = {("LY", "work_rights"): 6, ("LY", "detention"): 1, ("FR", "documents"): 1}
    await wait_until(lambda: _equal(counted(worker), expected), timeout=30, message="counted")

    afi = bearer(identity_provider, "analyst-afi", "analyst")
    yao = bearer(identity_provider, "coord-yao", "ministry_coordinator")
    edem = bearer(identity_provider, "analyst-edem", "analyst")

    evidence = await http.get("/countries/evidence/LY", headers=afi)
    assert evidence.status_code == 200
    # Analysts get small cells suppressed; coordinators exact counts.
    assert {c["category"]: c["reports"] for c in evidence.json()["difficulty_reports"]} == {
        "detention": None,
        "work_rights": 6,
    }
    exact = (await http.get("/countries/evidence/LY", headers=yao)).json()
    assert {c["category"]: c["reports"] for c in exact["difficulty_reports"]} == {
        "detention": 1,
        "work_rights": 6,
    }

    created = await http.post("/countries/watchlist", json=proposal(), headers=afi)
    assert created.status_code == 201, created.text
    entry = created.json()
    assert entry["status"] == "draft"
    assert entry["proposed_by"] == "analyst-afi"
    # Frozen with the proposal; small cells hidden from analysts, exact for coordinators.
    assert entry["evidence"]["difficulty_reports"] == {"detention": None, "work_rights": 6}
    assert entry["evidence"]["sources"] == [
        {"title": "Rapport OIT 2026", "url": "https://example.org/ilo"}
    ]
    as_coordinator = await http.get(f"/countries/watchlist/{entry['id']}", headers=yao)
    assert as_coordinator.json()["evidence"]["difficulty_reports"] == {
        "detention": 1,
        "work_rights": 6,
    }
    assert entry["allowed_actions"] == ["submit", "withdraw"]
    path = f"/countries/watchlist/{entry['id']}/transitions"
    assert (await http.get("/countries/watchlist")).json() == {"items": []}

    early = await http.post(path, json={"action": "publish"}, headers=edem)
    assert early.status_code == 409
    assert early.headers["content-type"].startswith(PROBLEM)
    assert early.json()["allowed"] == ["submit", "withdraw"]
    submitted = await http.post(path, json={"action": "submit"}, headers=afi)
    assert submitted.status_code == 200
    assert submitted.json()["status"] == "under_review"
    # Four-eyes: the proposer cannot publish their own entry.
    own = await http.post(path, json={"action": "publish"}, headers=afi)
    assert own.status_code == 403, own.text
    assert own.json()["type"].endswith("four-eyes")
    citizen = bearer(identity_provider, "kossi", "citizen")
    assert (await http.post(path, json={"action": "publish"}, headers=citizen)).status_code == 403
    published = await http.post(path, json={"action": "publish"}, headers=edem)
    assert published.status_code == 200, published.text
    assert published.json()["status"] == "published"
    assert published.json()["reviewed_by"] == "analyst-edem"
    assert [h["action"] for h in published.json()["history"]] == ["propose", "submit", "publish"]

    public = (await http.get("/countries/watchlist")).json()["items"]
    assert [(p["country"], p["level"], p["text"]["en"]) for p in public] == [
        ("LY", "avoid", "Confiscated passports and unpaid wages are reported.")
    ]
    assert "evidence" not in public[0]
    assert "proposed_by" not in public[0]

    # A second entry for Libya cannot be published while the first stands.
    second = (await http.post("/countries/watchlist", json=proposal(), headers=edem)).json()
    second_path = f"/countries/watchlist/{second['id']}/transitions"
    await http.post(second_path, json={"action": "submit"}, headers=edem)
    refused = await http.post(second_path, json={"action": "publish"}, headers=afi)
    assert refused.status_code == 409
    assert refused.json()["allowed"] == ["withdraw"]

    withdrawn = await http.post(
        path, json={"action": "withdraw", "reason": "Situation améliorée"}, headers=yao
    )
    assert withdrawn.status_code == 200
    assert withdrawn.json()["status"] == "withdrawn"
    again = await http.post(path, json={"action": "publish"}, headers=edem)
    assert again.status_code == 409
    assert again.json()["allowed"] == []

    # The advisory, as notifications reads it: published once, then withdrawn.
    await publish_outbox(
        worker.engine,
        outbox,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        client_id="returnees-test-relay",
    )
    records = await read_topic(
        kafka_bootstrap, topic_prefix + RETURNEES_ADVISORIES.name, expect=2, timeout=20
    )
    events = sorted(
        (dict((k, v.decode()) for k, v in r.headers)["ce_type"], json.loads(r.value))
        for r in records
    )
    assert [t for t, _ in events] == [
        "returnees.advisory.published",
        "returnees.advisory.withdrawn",
    ]
    advisory = events[0][1]
    assert advisory["entry_id"] == entry["id"]
    assert advisory["country"] == "LY"
    assert advisory["level"] == "avoid"
    assert advisory["text_fr"] == "Passeports confisqués et salaires impayés signalés."
    assert advisory["title_en"] == "Serious risks for workers"


async def _equal(found: Any, expected: dict[tuple[str, str], int]) -> bool:
    return bool(await found == expected)


async def _case_from(
    returnees: Returnees, country: str, reason: str, *, cancel: bool = False
) -> None:
    """A case opened by a case worker: returned from ``country`` for ``reason`` (declared
    without a return date, then cancelled when ``cancel``: the return did not happen)."""
    now = datetime.now(UTC)
    async with returnees.sessions() as session, session.begin():
        row = await cases.open_case(
            session,
            returnees.outbox,
            case_id=cases.new_case_id(),
            member_id=None,
            returnee_subject=None,
            origin="case_worker",
            opened_by="cw-test",
            now=now,
            return_date=None if cancel else now.date(),
            country_from=country,
            reason=reason,
        )
        assert row is not None
        if cancel:
            await cases.transition(session, returnees.outbox, row, "cancel", {}, now=now)


async def test_the_evidence_counts_cases_whose_reason_indicates_rights_violations(
    returnees: Returnees, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    # Counted: expelled and humanitarian returns from the country, not cancelled ones;
    # not other reasons, not other countries.
    for reason, times in (("expelled", 5), ("humanitarian", 1), ("voluntary", 3)):
        for _ in range(times):
            await _case_from(returnees, "LY", reason)
    await _case_from(returnees, "LY", "expelled", cancel=True)
    await _case_from(returnees, "LY", "end_of_contract")
    await _case_from(returnees, "FR", "expelled")
    afi = bearer(identity_provider, "analyst-afi", "analyst")
    yao = bearer(identity_provider, "coord-yao", "ministry_coordinator")

    def by_reason(evidence: dict[str, Any]) -> dict[str, int | None]:
        return {c["reason"]: c["cases"] for c in evidence["cases"]}

    analyst_view = (await http.get("/countries/evidence/LY", headers=afi)).json()
    # Small cells (under 5) hidden from analysts, exact for coordinators.
    assert by_reason(analyst_view) == {"expelled": 5, "humanitarian": None}
    assert "expelled or humanitarian" in analyst_view["cases_rule"]
    exact = (await http.get("/countries/evidence/LY", headers=yao)).json()
    assert by_reason(exact) == {"expelled": 5, "humanitarian": 1}
    assert by_reason((await http.get("/countries/evidence/FR", headers=yao)).json()) == {
        "expelled": 1,
        "humanitarian": 0,
    }

    # Frozen with the proposal: a case counted later changes the live count only.
    created = await http.post("/countries/watchlist", json=proposal(), headers=afi)
    assert created.status_code == 201, created.text
    entry = created.json()
    assert entry["evidence"]["cases"] == {"expelled": 5, "humanitarian": None}
    await _case_from(returnees, "LY", "humanitarian")
    frozen = (await http.get(f"/countries/watchlist/{entry['id']}", headers=yao)).json()
    assert frozen["evidence"]["cases"] == {"expelled": 5, "humanitarian": 1}
    live = (await http.get("/countries/evidence/LY", headers=yao)).json()
    assert by_reason(live) == {"expelled": 5, "humanitarian": 2}
