"""Partners and referrals end to end on the real PostgreSQL and Kafka: a case worker
refers a case's need to a partner covering the returnee's prefecture, the partner
acknowledges and reports it done or refused (with a reason); another partner's case
workers get 404; the status machine answers 409 naming the allowed actions; a partner
not offering the need or not covering the prefecture is 422 naming why; malformed bodies
are 422 problem details; an overdue referral escalates (the event read back from the
topic); the returnee follows the status of their own referrals; staff reads audited."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from returnees_testing import known_person, profile
from sqlalchemy import select

from diaspora_devstack.testing import DeadLetters, event_record, publish_outbox, read_topic
from diaspora_events.consumer import Outcome
from diaspora_events.contracts.registry import MemberErasedV1, MemberMergedV1
from diaspora_events.topics import RETURNEES_REFERRALS
from diaspora_identity.principal import Role
from diaspora_identity.testing import (
    LocalIssuer,
    Persona,
    case_worker,
    caseworker,
    citizen,
    coordinator,
)
from returnees.bootstrap import consumers, run_referrals_sla_once
from returnees.cases.domain import NEED_AREAS
from returnees.members.consumer import CONSUMER_NAME
from returnees.resources import Returnees
from returnees.tables import audit_log, outbox

pytestmark = pytest.mark.integration

NOTE = "Arrives on the 12th with two children; needs a room near Lomé for a month."


class Caller:
    def __init__(self, http: httpx.AsyncClient, issuer: LocalIssuer, persona: Persona) -> None:
        self.http = http
        self.headers = issuer.headers(persona)
        self.persona = persona

    async def new_partner(self, **body: Any) -> httpx.Response:
        payload = {
            "partner_org": f"org-{uuid.uuid4().hex[:8]}",
            "name": "Caritas Togo",
            "contact": {"name": "Reception desk", "email": "desk@example.org"},
            "services": ["reception", "housing"],
            "regions": ["TG-M"],
            **body,
        }
        return await self.http.post("/partners", json=payload, headers=self.headers)

    async def new_case(
        self,
        member_id: str | None = None,
        *,
        prefecture: str | None = None,
        needs: tuple[str, ...] = NEED_AREAS,
        **intake: Any,
    ) -> dict[str, Any]:
        """A case this case worker opens (the returnee arrived from Libya), takes and
        assesses (every need area, so that any may be referred)."""
        opening = {"return_date": datetime.now(UTC).date().isoformat(), "country_from": "LY"}
        if member_id is not None:
            opening["member_id"] = member_id
        if prefecture is not None:
            opening["prefecture"] = prefecture
        case = ok(
            await self.http.post("/cases", json={**opening, **intake}, headers=self.headers), 201
        )
        path = f"/cases/{case['id']}"
        ok(
            await self.http.put(
                f"{path}/assignee", json={"case_worker": self.persona.subject}, headers=self.headers
            )
        )
        assessment = [{"area": area, "priority": "medium"} for area in needs]
        assessed: dict[str, Any] = ok(
            await self.http.post(f"{path}/needs", json={"needs": assessment}, headers=self.headers)
        )
        return assessed

    async def refer(self, partner_id: str, **body: Any) -> httpx.Response:
        """Refer a need; unless ``case_id`` is given, of a new case of this case worker
        (for the returnee ``member_id``, if given)."""
        member_id = body.pop("member_id", None)
        if "case_id" not in body:
            if Role.CASE_WORKER.value in self.persona.roles:
                body["case_id"] = (await self.new_case(member_id))["id"]
            else:
                body["case_id"] = str(uuid.uuid4())
        payload = {
            "partner_id": partner_id,
            "need": "housing",
            "priority": "high",
            "prefecture": "golfe",
            "language": "fr",
            "note": NOTE,
            **body,
        }
        return await self.http.post("/referrals", json=payload, headers=self.headers)

    async def get(self, referral_id: str) -> httpx.Response:
        return await self.http.get(f"/referrals/{referral_id}", headers=self.headers)

    async def queue(self, **params: Any) -> httpx.Response:
        return await self.http.get("/referrals", params=params, headers=self.headers)

    async def act(self, referral_id: str, action: str, reason: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"action": action}
        if reason is not None:
            body["reason"] = reason
        return await self.http.post(
            f"/referrals/{referral_id}/transitions", json=body, headers=self.headers
        )


def ok(answer: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    return body


def problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    return body


async def referral_events(
    returnees: Returnees, topic_prefix: str, expect: int
) -> list[tuple[str, dict[str, Any]]]:
    """Publish the outbox as the relay does, then read the referrals topic back."""
    await publish_outbox(
        returnees.engine,
        outbox,
        kafka_bootstrap=returnees.settings.kafka_bootstrap,
        topic_prefix=topic_prefix,
        client_id="returnees-test-relay",
    )
    records = await read_topic(
        returnees.settings.kafka_bootstrap, topic_prefix + RETURNEES_REFERRALS.name, expect=expect
    )
    return [
        ({k: v.decode() for k, v in r.headers}["ce_type"], json.loads(r.value))
        for r in sorted(records, key=lambda r: (r.timestamp, r.offset))
    ]


async def test_refer_acknowledge_done_and_the_returnee_follows(
    returnees: Returnees, http: httpx.AsyncClient, identity_provider: LocalIssuer, topic_prefix: str
) -> None:
    ministry = Caller(http, identity_provider, coordinator())
    cell = Caller(http, identity_provider, case_worker())
    partner = ok(await ministry.new_partner(), 201)
    assert partner["regions"] == ["TG-M"]
    assert partner["services"] == ["housing", "reception"]
    org = partner["partner_org"]
    caritas = Caller(http, identity_provider, caseworker(org))
    member_id = uuid.uuid4()
    returnee = Caller(http, identity_provider, citizen(member_id=member_id))

    # The cell finds who offers housing in Golfe, and refers the need there.
    found = ok(
        await cell.http.get(
            "/partners", params={"offers": "housing", "prefecture": "Golfe"}, headers=cell.headers
        )
    )
    assert [p["id"] for p in found["items"]] == [partner["id"]]
    referred = ok(await cell.refer(partner["id"], member_id=str(member_id)), 201)
    referral_id = referred["id"]
    assert referred["status"] == "referred"
    assert referred["prefecture"] == "golfe"
    assert referred["region"] == "TG-M"
    assert referred["partner"] == {"id": partner["id"], "partner_org": org, "name": "Caritas Togo"}
    assert referred["allowed_actions"] == ["cancel"]
    at = datetime.fromisoformat(referred["referred_at"])
    assert datetime.fromisoformat(referred["acknowledge_by"]) - at == timedelta(days=3)
    assert datetime.fromisoformat(referred["complete_by"]) - at == timedelta(days=30)

    # The partner's case worker finds it in the organisation's queue and acknowledges it.
    queue = ok(await caritas.queue())
    assert [r["id"] for r in queue["items"]] == [referral_id]
    seen = queue["items"][0]
    assert seen["note"] == NOTE
    assert seen["allowed_actions"] == ["acknowledge", "refuse"]
    acknowledged = ok(await caritas.act(referral_id, "acknowledge"))
    assert acknowledged["status"] == "acknowledged"
    assert acknowledged["acknowledged_at"] is not None
    done = ok(await caritas.act(referral_id, "complete", "Room found in Bè; moved in."))
    assert done["status"] == "done"
    assert done["outcome"] == "Room found in Bè; moved in."
    assert done["closed_at"] is not None
    assert [(h["action"], h["to_status"], h["actor_side"]) for h in done["history"]] == [
        ("refer", "referred", "cell"),
        ("acknowledge", "acknowledged", "partner"),
        ("complete", "done", "partner"),
    ]
    # Closed: nothing more is possible, and the 409 says so.
    late = problem(await caritas.act(referral_id, "refuse", "too late"), 409)
    assert late["allowed"] == []
    assert late["status_now"] == "done"

    # The returnee sees the status of their referral, not the notes.
    mine = ok(await returnee.queue())
    assert [(r["id"], r["status"], r["need"]) for r in mine["items"]] == [
        (referral_id, "done", "housing")
    ]
    assert mine["items"][0]["note"] is None
    assert mine["items"][0]["outcome"] is None
    assert mine["items"][0]["partner"]["name"] == "Caritas Togo"
    assert ok(await returnee.get(referral_id))["status"] == "done"
    stranger = Caller(http, identity_provider, citizen(member_id=uuid.uuid4()))
    problem(await stranger.get(referral_id), 404)

    # Staff reads and changes are audited against the returnee; theirs are not.
    async with returnees.sessions() as session:
        audited = (
            await session.execute(
                select(audit_log.c.actor_subject, audit_log.c.action).where(
                    audit_log.c.record_id == member_id
                )
            )
        ).all()
    readers = set(audited)
    assert (cell.persona.subject, "refer") in readers
    assert (caritas.persona.subject, "list") in readers
    assert (caritas.persona.subject, "acknowledge") in readers
    assert (caritas.persona.subject, "complete") in readers
    assert not any(s == returnee.persona.subject for s, _ in readers)

    events = await referral_events(returnees, topic_prefix, expect=3)
    assert [k for k, _ in events] == [
        "returnees.referral.created",
        "returnees.referral.status-changed",
        "returnees.referral.status-changed",
    ]
    created = events[0][1]
    assert created["referral_id"] == referral_id
    assert created["member_id"] == str(member_id)
    assert created["partner_org"] == org
    assert created["need"] == "housing"
    assert created["prefecture"] == "golfe"
    assert created["note"] == NOTE
    assert [(d["action"], d["from_status"], d["to_status"]) for _, d in events[1:]] == [
        ("acknowledge", "referred", "acknowledged"),
        ("complete", "acknowledged", "done"),
    ]


async def test_a_partner_refuses_with_a_reason(
    returnees: Returnees, http: httpx.AsyncClient, identity_provider: LocalIssuer, topic_prefix: str
) -> None:
    ministry = Caller(http, identity_provider, coordinator())
    cell = Caller(http, identity_provider, case_worker())
    partner = ok(await ministry.new_partner(), 201)
    caritas = Caller(http, identity_provider, caseworker(partner["partner_org"]))
    referral_id = ok(await cell.refer(partner["id"]), 201)["id"]

    missing = problem(await caritas.act(referral_id, "refuse"), 422)
    assert missing["errors"][0]["field"] == "reason"
    blank = problem(await caritas.act(referral_id, "refuse", "   "), 422)
    assert blank["errors"][0]["field"] == "reason"
    # A partner does not cancel; the cell does not acknowledge (409 naming what is allowed).
    assert problem(await caritas.act(referral_id, "cancel", "no"), 409)["allowed"] == [
        "acknowledge",
        "refuse",
    ]
    assert problem(await cell.act(referral_id, "acknowledge"), 409)["allowed"] == ["cancel"]

    refused = ok(await caritas.act(referral_id, "refuse", "No room left until March."))
    assert refused["status"] == "refused"
    assert refused["outcome"] == "No room left until March."
    assert problem(await caritas.act(referral_id, "acknowledge"), 409)["allowed"] == []
    # Refused: the case's need may be referred to the same partner again later.
    assert ok(await cell.refer(partner["id"], case_id=refused["case_id"]), 201)["status"] == (
        "referred"
    )

    events = await referral_events(returnees, topic_prefix, expect=3)
    changed = [d for k, d in events if k == "returnees.referral.status-changed"]
    assert [(d["action"], d["to_status"], d["reason"]) for d in changed] == [
        ("refuse", "refused", "No room left until March.")
    ]


async def test_another_partners_case_worker_gets_404(
    returnees: Returnees, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    ministry = Caller(http, identity_provider, coordinator())
    cell = Caller(http, identity_provider, case_worker())
    ours = ok(await ministry.new_partner(name="Caritas Togo"), 201)
    theirs = ok(await ministry.new_partner(name="ANPE Lomé", services=["employment"]), 201)
    referral_id = ok(await cell.refer(ours["id"]), 201)["id"]
    other = Caller(http, identity_provider, caseworker(theirs["partner_org"]))
    nobody = Caller(http, identity_provider, caseworker("no-such-org"))

    for outsider in (other, nobody):
        problem(await outsider.get(referral_id), 404)
        problem(await outsider.act(referral_id, "acknowledge"), 404)
        assert ok(await outsider.queue())["total"] == 0
    # They see their own organisation among the partners, and no other.
    listed = ok(await other.http.get("/partners", headers=other.headers))
    assert [p["id"] for p in listed["items"]] == [theirs["id"]]
    problem(await other.http.get(f"/partners/{ours['id']}", headers=other.headers), 404)
    # Neither a partner nor the cell's case worker edits partners (the ministry does).
    assert (await other.new_partner()).status_code == 403
    assert (await cell.new_partner()).status_code == 403
    # ... nor does a partner refer.
    assert (await other.refer(theirs["id"], need="employment")).status_code == 403
    # The right one still acknowledges it.
    ours_worker = Caller(http, identity_provider, caseworker(ours["partner_org"]))
    assert ok(await ours_worker.act(referral_id, "acknowledge"))["status"] == "acknowledged"


async def test_a_partner_not_offering_the_need_or_not_covering_the_prefecture_is_422(
    returnees: Returnees, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    ministry = Caller(http, identity_provider, coordinator())
    cell = Caller(http, identity_provider, case_worker())
    savanes = ok(
        await ministry.new_partner(
            name="Savanes Accueil", regions=["Savanes"], prefectures=["Kozah"]
        ),
        201,
    )
    assert savanes["regions"] == ["TG-S"]
    assert savanes["prefectures"] == ["kozah"]

    elsewhere = problem(await cell.refer(savanes["id"], prefecture="golfe"), 422)
    assert "does not cover the prefecture golfe" in elsewhere["detail"]
    assert elsewhere["errors"][0]["field"] == "partner_id"
    not_offered = problem(await cell.refer(savanes["id"], need="health", prefecture="kozah"), 422)
    assert "does not offer health" in not_offered["detail"]
    # A prefecture of a covered region, and a single covered prefecture, are fine.
    assert ok(await cell.refer(savanes["id"], prefecture="Tône"), 201)["region"] == "TG-S"
    assert ok(await cell.refer(savanes["id"], prefecture="kozah"), 201)["region"] == "TG-K"

    # An inactive partner takes no referrals.
    edit = {k: v for k, v in savanes.items() if k in ("name", "contact", "services", "regions")}
    edited = await ministry.http.put(
        f"/partners/{savanes['id']}",
        json={**edit, "prefectures": ["kozah"], "active": False},
        headers={**ministry.headers, "if-match": '"1"'},
    )
    assert ok(edited)["version"] == 2
    inactive = problem(await cell.refer(savanes["id"], prefecture="tone"), 422)
    assert "inactive" in inactive["detail"]
    # A stale If-Match is refused.
    stale = await ministry.http.put(
        f"/partners/{savanes['id']}",
        json={**edit, "active": True},
        headers={**ministry.headers, "if-match": '"1"'},
    )
    problem(stale, 412)


async def test_malformed_bodies_are_422_problem_details(
    returnees: Returnees, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    ministry = Caller(http, identity_provider, coordinator())
    cell = Caller(http, identity_provider, case_worker())
    partner = ok(await ministry.new_partner(), 201)

    cases: list[tuple[dict[str, Any], str]] = [
        ({"case_id": "not-a-uuid"}, "case_id"),
        ({"need": "money"}, "need"),
        ({"priority": "urgent"}, "priority"),
        ({"note": "line one\u0000"}, "note"),
        ({"colour": "blue"}, "colour"),
        ({"prefecture": "Paris"}, "prefecture"),
    ]
    for body, field in cases:
        answer = problem(await cell.refer(partner["id"], **body), 422)
        assert field in json.dumps(answer), (field, answer)
    for partner_id in (str(uuid.uuid4()), "not-a-uuid"):
        answer = problem(await cell.refer(partner_id), 422)
        assert "partner_id" in json.dumps(answer), answer
    missing = await cell.http.post("/referrals", json={"need": "housing"}, headers=cell.headers)
    assert "case_id" in json.dumps(problem(missing, 422))
    not_json = await cell.http.post(
        "/referrals",
        content=b"{not json",
        headers={**cell.headers, "content-type": "application/json"},
    )
    problem(not_json, 422)

    for body, field in [
        ({"regions": ["Atlantis"]}, "regions"),
        ({"prefectures": ["Nowhere"]}, "prefectures"),
        ({"regions": [], "prefectures": []}, "regions"),
        ({"services": ["money"]}, "services"),
        ({"partner_org": "Not An Org!"}, "partner_org"),
        ({"contact": {"name": "Desk", "phone": "12345"}}, "phone"),
    ]:
        answer = problem(await ministry.new_partner(**body), 422)
        assert field in json.dumps(answer), (field, answer)
    taken = problem(await ministry.new_partner(partner_org=partner["partner_org"]), 409)
    assert partner["partner_org"] in taken["detail"]
    caseworker_of = Caller(http, identity_provider, caseworker(partner["partner_org"]))
    referral_id = ok(await cell.refer(partner["id"]), 201)["id"]
    unknown = await caseworker_of.act(referral_id, "escalate")
    problem(unknown, 422)


async def test_an_overdue_referral_escalates_to_the_ministry_once_per_stage(
    returnees: Returnees, http: httpx.AsyncClient, identity_provider: LocalIssuer, topic_prefix: str
) -> None:
    ministry = Caller(http, identity_provider, coordinator())
    cell = Caller(http, identity_provider, case_worker())
    partner = ok(await ministry.new_partner(), 201)
    caritas = Caller(http, identity_provider, caseworker(partner["partner_org"]))
    late = ok(await cell.refer(partner["id"]), 201)["id"]
    prompt = ok(await cell.refer(partner["id"]), 201)["id"]
    ok(await caritas.act(prompt, "acknowledge"))

    now = datetime.now(UTC)
    assert await run_referrals_sla_once(returnees, now) == []
    assert ok(await ministry.queue(escalated="true"))["total"] == 0

    # Four days on: the first was never acknowledged (3 days).
    four_days_on = now + timedelta(days=4)
    assert await run_referrals_sla_once(returnees, four_days_on) == [(UUID(late), "acknowledge")]
    assert await run_referrals_sla_once(returnees, four_days_on + timedelta(minutes=1)) == []
    flagged = ok(await ministry.queue(escalated="true"))["items"]
    assert [r["id"] for r in flagged] == [late]
    assert flagged[0]["acknowledge_escalated_at"] is not None
    assert flagged[0]["escalated"] is True
    # (``overdue`` is computed against the real clock: not yet, in real time.)
    assert flagged[0]["overdue"] is None
    history = ok(await ministry.get(late))["history"]
    assert history[-1]["action"] == "escalate"
    assert history[-1]["actor_side"] == "system"
    # The partner sees the flag too.
    assert ok(await caritas.get(late))["escalated"] is True

    # A month on: neither reported an outcome (30 days): each escalates for it, once.
    month_on = now + timedelta(days=31)
    assert sorted(await run_referrals_sla_once(returnees, month_on)) == sorted(
        [(UUID(late), "complete"), (UUID(prompt), "complete")]
    )
    assert await run_referrals_sla_once(returnees, month_on) == []

    events = await referral_events(returnees, topic_prefix, expect=6)
    escalations = [d for k, d in events if k == "returnees.referral.escalated"]
    assert sorted((d["referral_id"], d["stage"], d["status"]) for d in escalations) == sorted(
        [
            (late, "acknowledge", "referred"),
            (late, "complete", "referred"),
            (prompt, "complete", "acknowledged"),
        ]
    )
    assert all(d["partner_org"] == partner["partner_org"] for d in escalations)
    assert all("note" not in d for d in escalations)


async def test_erasure_unlinks_the_returnee_and_a_merge_moves_the_referrals(
    returnees: Returnees, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    ministry = Caller(http, identity_provider, coordinator())
    cell = Caller(http, identity_provider, case_worker())
    partner = ok(await ministry.new_partner(), 201)
    caritas = Caller(http, identity_provider, caseworker(partner["partner_org"]))
    member_id = uuid.uuid4()
    kept_for = uuid.uuid4()
    erased = ok(await cell.refer(partner["id"], member_id=str(member_id)), 201)["id"]
    kept = ok(await cell.refer(partner["id"], member_id=str(kept_for)), 201)["id"]
    ok(await caritas.act(erased, "refuse", "Kodjo's landlord refused."))

    # The registry's erasure reaches the service's consumer of registry.members, whose
    # erase steps (composed by bootstrap) clear the referrals in its transaction.
    (consumer,) = [
        c
        for c in consumers(sessions=returnees.sessions, dead_letters=DeadLetters())
        if c.name == CONSUMER_NAME
    ]
    erasure = MemberErasedV1(member_id=member_id, erased_at=datetime.now(UTC))
    assert await consumer.handle_record(event_record(erasure)) is Outcome.HANDLED

    after = ok(await ministry.get(erased))
    assert after["member_id"] is None
    assert after["note"] is None
    assert after["outcome"] is None
    assert [h["reason"] for h in after["history"]] == [None, None]
    assert (after["need"], after["status"], after["prefecture"]) == ("housing", "refused", "golfe")
    assert (
        ok(await Caller(http, identity_provider, citizen(member_id=member_id)).queue())["total"]
        == 0
    )
    other = ok(await ministry.get(kept))
    assert (other["member_id"], other["note"]) == (str(kept_for), NOTE)

    # A merge: the survivor's token sees the absorbed record's referral.
    survivor = uuid.uuid4()
    merger = MemberMergedV1(
        member_id=kept_for, survivor_id=survivor, merged_at=datetime.now(UTC), case_id=uuid.uuid4()
    )
    assert await consumer.handle_record(event_record(merger)) is Outcome.HANDLED
    theirs = ok(await Caller(http, identity_provider, citizen(member_id=survivor)).queue())
    assert [r["id"] for r in theirs["items"]] == [kept]


async def test_a_referral_checks_its_case(
    returnees: Returnees, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    """The case says who and where; only its assigned case worker or a coordinator
    refers it; a need the assessment lists; not once the case is over. The case shows
    its referrals' status, to the returnee too."""
    ministry = Caller(http, identity_provider, coordinator())
    afi = Caller(http, identity_provider, case_worker("cw-afi"))
    kossi = Caller(http, identity_provider, case_worker("cw-kossi"))
    member_id = uuid.uuid4()
    await known_person(returnees, member_id, profile())
    returnee = Caller(http, identity_provider, citizen(member_id=member_id))
    caritas = ok(await ministry.new_partner(), 201)
    other = ok(await ministry.new_partner(name="Maison d'accueil"), 201)

    # Where the returnee settles is checked against Togo's prefectures.
    paris = await afi.http.post(
        "/cases", json={"prefecture": "Paris", "country_from": "LY"}, headers=afi.headers
    )
    assert "prefecture" in json.dumps(problem(paris, 422))
    case = await afi.new_case(str(member_id), prefecture="Agoè-Nyivé", needs=("housing",))
    assert (case["prefecture"], case["region"]) == ("agoe-nyive", "TG-M")
    case_id = case["id"]

    # member_id is no longer the case worker's word: the body may not carry it.
    referral = ok(
        await afi.refer(caritas["id"], case_id=case_id, prefecture=None, language=None), 201
    )
    assert referral["member_id"] == str(member_id)
    assert (referral["prefecture"], referral["region"]) == ("agoe-nyive", "TG-M")
    extra = await http.post(
        "/referrals",
        json={
            "case_id": case_id,
            "partner_id": other["id"],
            "need": "housing",
            "member_id": str(uuid.uuid4()),
        },
        headers=afi.headers,
    )
    assert "member_id" in json.dumps(problem(extra, 422))
    # The language defaults to the returnee's registry record's.
    assert referral["language"] == "fr"

    # Another prefecture than the case's: 422 naming it; a need not assessed: 422.
    moved = problem(await afi.refer(other["id"], case_id=case_id, prefecture="kozah"), 422)
    assert moved["errors"][0]["code"] == "differs_from_case"
    unlisted = problem(
        await afi.refer(other["id"], case_id=case_id, need="reception", prefecture=None), 422
    )
    assert unlisted["errors"][0]["code"] == "not_assessed"
    assert "does not list reception (lists: housing)" in unlisted["detail"]
    # Unknown case: 404. Not the assigned case worker: 403; a coordinator may.
    problem(await afi.refer(other["id"], case_id=str(uuid.uuid4()), prefecture=None), 404)
    problem(await kossi.refer(other["id"], case_id=case_id, prefecture=None), 403)
    by_coordinator = ok(
        await ministry.refer(other["id"], case_id=case_id, prefecture=None, note=None), 201
    )
    assert by_coordinator["member_id"] == str(member_id)

    # The case lists its referrals and their status; the returnee sees them on their case.
    caritas_worker = Caller(http, identity_provider, caseworker(caritas["partner_org"]))
    ok(await caritas_worker.act(referral["id"], "acknowledge"))
    seen = ok(await returnee.http.get(f"/cases/{case_id}", headers=returnee.headers))
    assert [(r["id"], r["need"], r["partner_name"], r["status"]) for r in seen["referrals"]] == [
        (referral["id"], "housing", caritas["name"], "acknowledged"),
        (by_coordinator["id"], "housing", other["name"], "referred"),
    ]
    assert NOTE not in json.dumps(seen)

    # A closed case takes no referral (409); nor a cancelled one.
    ok(
        await afi.http.post(
            f"/cases/{case_id}/close", json={"outcome": "reintegrated"}, headers=afi.headers
        )
    )
    ok(await caritas_worker.act(referral["id"], "complete"))
    closed = problem(await afi.refer(other["id"], case_id=case_id, prefecture=None), 409)
    assert (closed["status_now"], closed["type"].rsplit("/", 1)[-1]) == (
        "closed",
        "case-not-active",
    )
    declared = ok(
        await afi.http.post("/cases", json={"country_from": "LY"}, headers=afi.headers), 201
    )
    ok(
        await afi.http.put(
            f"/cases/{declared['id']}/assignee",
            json={"case_worker": "cw-afi"},
            headers=afi.headers,
        )
    )
    ok(await afi.http.post(f"/cases/{declared['id']}/cancel", headers=afi.headers))
    cancelled = problem(await afi.refer(other["id"], case_id=declared["id"]), 409)
    assert cancelled["status_now"] == "cancelled"

    # A case recording no prefecture: the referral names it, or 422.
    nowhere = await afi.new_case(str(member_id))
    assert nowhere["prefecture"] is None
    missing = problem(await afi.refer(other["id"], case_id=nowhere["id"], prefecture=None), 422)
    assert missing["errors"][0]["code"] == "missing"
    named = ok(await afi.refer(other["id"], case_id=nowhere["id"], prefecture="Golfe"), 201)
    assert named["prefecture"] == "golfe"
    # The case shows the referral done once the partner reports it.
    after = ok(await afi.http.get(f"/cases/{case_id}", headers=afi.headers))
    assert [r["status"] for r in after["referrals"]] == ["done", "referred"]
