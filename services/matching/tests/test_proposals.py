"""Proposals and answers against the real database and broker: a coordinator proposes
a need to candidates of the ranking, each expert answers their own, the need fills."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from matching_testing import events_on, publish_outbox
from matching_testing.experts import new_member_id, profile
from sqlalchemy import select, update

from diaspora_events.contracts import (
    MatchAcceptedV1,
    MatchDeclinedV1,
    MatchProposedV1,
    MatchWithdrawnV1,
    MatchWithdrawnV2,
    NeedClosedV1,
)
from diaspora_events.topics import MATCHING_MATCHES, MATCHING_NEEDS
from diaspora_identity.testing import LocalIssuer, Persona, analyst, citizen, coordinator
from matching.bootstrap import periodic_tasks
from matching.experts.projection import apply_profile
from matching.missions.tables import missions
from matching.needs.tables import needs
from matching.proposals.tables import proposals
from matching.resources import Matching
from matching.tables import audit_log

pytestmark = pytest.mark.integration

SOON = date.today() + timedelta(days=60)


def client(base_url: str, issuer: LocalIssuer, persona: Persona) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=10, headers=issuer.headers(persona))


async def add_expert(service: Matching, member_id: UUID, **fields: Any) -> None:
    """An expert in the read model, through the read model's own projection."""
    async with service.sessions() as session, session.begin():
        await apply_profile(session, member_id, profile(**fields), datetime.now(UTC))


def need(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Mission de chirurgie pédiatrique",
        "type": "medical",
        "institution": "CHU Kara",
        "institution_kind": "hospital",
        "description": "Former les équipes de chirurgie pédiatrique.",
        "occupations": ["2212"],
        "languages": ["fr"],
        "starts_on": SOON.isoformat(),
        "ends_on": (SOON + timedelta(days=14)).isoformat(),
        "region": "TG-K",
        "prefecture": "Kozah",
        "experts_wanted": 2,
        "publish": True,
    }
    body.update(overrides)
    return body


async def test_proposals_answers_and_a_need_that_fills(
    matching: Matching, matching_url: str, identity_provider: LocalIssuer
) -> None:
    ama, kossi, edem, yawa = (new_member_id() for _ in range(4))
    surgeon = {"occupations": [("2212", "Chirurgienne pédiatrique")], "languages": ["fr", "en"]}
    await add_expert(matching, ama, given_name="Ama", **surgeon)
    await add_expert(matching, kossi, given_name="Kossi", **surgeon)
    await add_expert(matching, edem, given_name="Edem", **surgeon)
    await add_expert(matching, yawa, given_name="Yawa", country="DE", **surgeon)
    english_only = new_member_id()
    await add_expert(
        matching, english_only, given_name="John", languages=["en"], preferred_language="en"
    )
    refusing = new_member_id()  # no consent: not in the read model
    await add_expert(matching, refusing, given_name="Afi", consent=False)

    ministry = coordinator()
    async with client(matching_url, identity_provider, ministry) as api:
        posted = await api.post("/needs", json=need())
        assert posted.status_code == 201, posted.text
        need_id = posted.json()["id"]
        ranked = await api.get(f"/needs/{need_id}/candidates")
        assert ranked.status_code == 200, ranked.text
        assert {c["member_id"] for c in ranked.json()["items"]} >= {
            str(m) for m in (ama, kossi, edem, yawa)
        }

        # Not candidates: nobody is proposed, and the answer says who and why.
        refused = await api.post(
            f"/needs/{need_id}/proposals",
            json={"member_ids": [str(ama), str(english_only), str(refusing)]},
        )
        assert refused.status_code == 422, refused.text
        why = {r["member_id"]: r["reason"] for r in refused.json()["refused"]}
        assert set(why) == {str(english_only), str(refusing)}
        assert "fr" in why[str(english_only)]
        assert "consent" in why[str(refusing)]
        assert (await api.get(f"/needs/{need_id}/proposals")).json()["items"] == []

        sent = await api.post(
            f"/needs/{need_id}/proposals",
            json={
                "member_ids": [str(ama), str(kossi), str(edem), str(yawa)],
                "respond_by": (SOON - timedelta(days=30)).isoformat(),
            },
        )
        assert sent.status_code == 201, sent.text
        assert sent.json()["created"] == 4
        first = {p["member_id"]: p for p in sent.json()["items"]}
        assert first[str(ama)]["given_name"] == "Ama"
        assert first[str(ama)]["reasons"], "the ranking's reasons travel with the proposal"
        assert first[str(ama)]["score"] > 0
        again = await api.post(f"/needs/{need_id}/proposals", json={"member_ids": [str(ama)]})
        assert (again.status_code, again.json()["created"]) == (200, 0)
        assert again.json()["items"][0]["id"] == first[str(ama)]["id"]
        status = (await api.get(f"/needs/{need_id}")).json()["status"]
        assert status == "proposals_sent"

    ids = {m: UUID(first[str(m)]["id"]) for m in (ama, kossi, edem, yawa)}

    # Each expert sees and answers their own proposals only.
    async with client(matching_url, identity_provider, citizen(member_id=kossi)) as api:
        mine = (await api.get("/proposals")).json()["items"]
        assert [p["id"] for p in mine] == [str(ids[kossi])]
        assert mine[0]["need"]["title"] == "Mission de chirurgie pédiatrique"
        for other in (ids[ama], ids[edem]):
            assert (await api.get(f"/proposals/{other}")).status_code == 404
            assert (await api.post(f"/proposals/{other}/accept")).status_code == 404
            declined = await api.post(f"/proposals/{other}/decline", json={"reason": "other"})
            assert declined.status_code == 404
        no = await api.post(
            f"/proposals/{ids[kossi]}/decline",
            json={"reason": "unavailable", "comment": "En congé à ces dates."},
        )
        assert no.status_code == 200, no.text
        assert no.json()["status"] == "declined"
        repeat = await api.post(f"/proposals/{ids[kossi]}/decline", json={"reason": "other"})
        assert (repeat.status_code, repeat.json()["decline_reason"]) == (200, "unavailable")
        assert (await api.post(f"/proposals/{ids[kossi]}/accept")).status_code == 409
        bad = await api.post(f"/proposals/{ids[kossi]}/decline", json={"reason": "bored"})
        assert bad.status_code == 422
    # Staff and citizens without the member id cannot answer for an expert.
    async with client(matching_url, identity_provider, coordinator()) as api:
        assert (await api.post(f"/proposals/{ids[ama]}/accept")).status_code == 403
    async with client(matching_url, identity_provider, citizen()) as api:
        assert (await api.post(f"/proposals/{ids[ama]}/accept")).status_code == 404
        assert (await api.get("/proposals")).json()["items"] == []
    async with client(matching_url, identity_provider, analyst()) as api:
        assert (await api.get("/proposals")).status_code == 403

    async with client(matching_url, identity_provider, citizen(member_id=ama)) as api:
        yes = await api.post(f"/proposals/{ids[ama]}/accept")
        assert yes.status_code == 200, yes.text
        assert yes.json()["status"] == "accepted"
        assert yes.json()["mission_id"] is not None
        twice = await api.post(f"/proposals/{ids[ama]}/accept")
        assert (twice.status_code, twice.json()["mission_id"]) == (200, yes.json()["mission_id"])
    async with client(matching_url, identity_provider, citizen(member_id=yawa)) as api:
        filled = await api.post(f"/proposals/{ids[yawa]}/accept")
        assert filled.status_code == 200, filled.text
    # Two accepted of two wanted: the need is filled, Edem's proposal withdrawn.
    async with client(matching_url, identity_provider, citizen(member_id=edem)) as api:
        late = await api.post(f"/proposals/{ids[edem]}/accept")
        assert late.status_code == 409
        assert late.json()["proposal_status"] == "withdrawn"
    async with client(matching_url, identity_provider, ministry) as api:
        assert (await api.get(f"/needs/{need_id}")).json()["status"] == "filled"
        listed = (await api.get(f"/needs/{need_id}/proposals")).json()["items"]
        assert {p["member_id"]: p["status"] for p in listed} == {
            str(ama): "accepted",
            str(yawa): "accepted",
            str(kossi): "declined",
            str(edem): "withdrawn",
        }
        closed = await api.post(f"/needs/{need_id}/proposals", json={"member_ids": [str(ama)]})
        assert closed.status_code == 409

    async with matching.sessions() as session:
        opened = (await session.execute(select(missions))).mappings().all()
        audited = set(
            (await session.execute(select(audit_log.c.record_id, audit_log.c.resource))).all()
        )
    assert {(m["member_id"], m["status"], m["country_of_residence"]) for m in opened} == {
        (ama, "awaiting_agreement", "FR"),
        (yawa, "awaiting_agreement", "DE"),
    }
    # The coordinator's reads of the experts' proposals are in the audit trail.
    assert (ama, "match_proposal") in audited

    await publish_outbox(matching)
    matches = await events_on(matching, MATCHING_MATCHES, expect=9)
    by_type: dict[str, list[Any]] = {}
    for event_type, event in matches:
        by_type.setdefault(event_type, []).append(event)
    assert len(by_type["matching.match.proposed"]) == 4
    proposed = next(e for e in by_type["matching.match.proposed"] if e.member_id == ama)
    assert isinstance(proposed, MatchProposedV1)
    assert proposed.need_title == "Mission de chirurgie pédiatrique"
    assert proposed.region == "TG-K"
    assert proposed.reasons
    assert {e.member_id for e in by_type["matching.match.accepted"]} == {ama, yawa}
    assert all(isinstance(e, MatchAcceptedV1) for e in by_type["matching.match.accepted"])
    (declined,) = by_type["matching.match.declined"]
    assert isinstance(declined, MatchDeclinedV1)
    assert (declined.reason, declined.comment) == ("unavailable", "En congé à ces dates.")
    # Published in versions 1 and 2, the same facts (version 1 can say this reason).
    first, second = by_type["matching.match.withdrawn"]
    assert {type(first), type(second)} == {MatchWithdrawnV1, MatchWithdrawnV2}
    assert first.model_dump() == second.model_dump()
    assert (first.member_id, first.reason) == (edem, "need_filled")

    need_events = await events_on(matching, MATCHING_NEEDS, expect=3)
    closing = [e for t, e in need_events if t == "matching.need.closed"]
    assert len(closing) == 1
    assert isinstance(closing[0], NeedClosedV1)
    assert closing[0].outcome == "filled"
    statuses = [e.need.status for t, e in need_events if t == "matching.need.updated"]
    assert statuses[-1] == "proposals_sent"


async def test_a_cancelled_need_withdraws_its_pending_proposals(
    matching: Matching, matching_url: str, identity_provider: LocalIssuer
) -> None:
    expert = new_member_id()
    await add_expert(matching, expert, occupations=["2212"])
    async with client(matching_url, identity_provider, coordinator()) as api:
        need_id = (await api.post("/needs", json=need(experts_wanted=1))).json()["id"]
        sent = await api.post(f"/needs/{need_id}/proposals", json={"member_ids": [str(expert)]})
        assert sent.status_code == 201, sent.text
        cancelled = await api.post(f"/needs/{need_id}/status", json={"status": "cancelled"})
        assert cancelled.status_code == 200, cancelled.text
    async with client(matching_url, identity_provider, citizen(member_id=expert)) as api:
        (mine,) = (await api.get("/proposals")).json()["items"]
        assert (mine["status"], mine["withdraw_reason"]) == ("withdrawn", "need_cancelled")
        assert (await api.post(f"/proposals/{mine['id']}/accept")).status_code == 409
    await publish_outbox(matching)
    events = await events_on(matching, MATCHING_MATCHES, expect=3)
    assert [(t, e.event_version) for t, e in events] == [
        ("matching.match.proposed", 1),
        ("matching.match.withdrawn", 2),
        ("matching.match.withdrawn", 1),
    ]


async def test_the_worker_expiry_job_withdraws_an_expired_needs_pending_proposals(
    matching: Matching, matching_url: str, identity_provider: LocalIssuer
) -> None:
    """The expiry job bootstrap builds for the worker closes the need with the proposals'
    own step: the proposal still awaiting an answer is withdrawn (need_expired)."""
    expert = new_member_id()
    await add_expert(matching, expert, occupations=["2212"])
    async with client(matching_url, identity_provider, coordinator()) as api:
        need_id = (await api.post("/needs", json=need(experts_wanted=1))).json()["id"]
        sent = await api.post(f"/needs/{need_id}/proposals", json={"member_ids": [str(expert)]})
        assert sent.status_code == 201, sent.text
    # Its dates pass (the API refuses dates in the past, so the test moves them).
    yesterday = date.today() - timedelta(days=1)
    async with matching.sessions() as session, session.begin():
        await session.execute(
            update(needs).where(needs.c.id == UUID(need_id)).values(starts_on=yesterday)
        )
    (expiry,) = periodic_tasks(matching)
    stop = asyncio.Event()
    job = asyncio.create_task(expiry(stop))
    try:
        async with asyncio.timeout(20):
            while True:
                async with matching.sessions() as session:
                    row = (
                        await session.execute(
                            select(proposals.c.status, proposals.c.withdraw_reason).where(
                                proposals.c.need_id == UUID(need_id)
                            )
                        )
                    ).one()
                if row.status != "proposed":
                    break
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await job
    assert tuple(row) == ("withdrawn", "need_expired")
    async with matching.sessions() as session:
        status = await session.scalar(select(needs.c.status).where(needs.c.id == UUID(need_id)))
    assert status == "expired"
