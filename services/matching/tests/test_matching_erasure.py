"""Erasure through the real broker: after registry.member.erased, the person is gone
from candidates, proposals, missions and projects, and no text column of matching's
database still names them; the ministry's counts hold."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from matching_testing import events_on, publish_outbox
from matching_testing.experts import new_member_id, profile, publish, updated
from sqlalchemy import func, select, text

from diaspora_devstack.testing import wait_until
from diaspora_events.contracts import MemberErasedV1
from diaspora_events.topics import MATCHING_MATCHES, MATCHING_PROJECTS, REGISTRY_MEMBERS
from diaspora_identity.testing import LocalIssuer, Persona, caseworker, citizen, coordinator
from matching.entrypoints.worker import run
from matching.experts.tables import experts
from matching.missions.tables import missions
from matching.projects.tables import project_interests, projects
from matching.proposals.tables import proposals
from matching.records.consumer import CONSUMER_NAME
from matching.resources import Matching
from matching.tables import inbox

pytestmark = pytest.mark.integration

START = date.today() + timedelta(days=40)
GIVEN, FAMILY = "Kafui", "Dossou-Amégan"
EMAIL, PHONE = "kafui.dossou@example.org", "+4915199887766"
# Columns that keep a member id on purpose, and why (docs/matching.md, erasure):
KEPT_IDS = {
    # The read model's tombstone: no replayed or late snapshot brings the person back.
    ("expert_sources", "member_id"),
    # Append-only audit trail of staff reads (same rule as the registry's).
    ("audit_log", "record_id"),
}


@contextlib.asynccontextmanager
async def running_worker(service: Matching) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(run(service, stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


def client(base_url: str, issuer: LocalIssuer, persona: Persona) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=10, headers=issuer.headers(persona))


def need(title: str, **overrides: Any) -> dict[str, Any]:
    return {
        "title": title,
        "type": "medical",
        "institution": "CHR Sokodé",
        "institution_kind": "hospital",
        "occupations": ["2221"],
        "starts_on": START.isoformat(),
        "ends_on": (START + timedelta(days=10)).isoformat(),
        "region": "TG-C",
        "publish": True,
        **overrides,
    }


async def in_read_model(service: Matching, member_id: UUID) -> bool:
    async with service.sessions() as session:
        found = await session.execute(
            select(experts.c.member_id).where(experts.c.member_id == member_id)
        )
    return found.first() is not None


async def handled_by_records(service: Matching) -> int:
    async with service.sessions() as session:
        count = await session.execute(
            select(func.count()).select_from(inbox).where(inbox.c.consumer == CONSUMER_NAME)
        )
    return int(count.scalar_one())


TEXT_COLUMNS = text(
    "SELECT table_name, column_name FROM information_schema.columns "
    "WHERE table_schema = 'public' AND table_name <> 'outbox' "
    "AND (data_type IN ('text', 'character varying', 'jsonb', 'json', 'tsvector') "
    "OR (data_type = 'ARRAY' AND udt_name IN ('_text', '_varchar')))"
)
UUID_COLUMNS = text(
    "SELECT table_name, column_name FROM information_schema.columns "
    "WHERE table_schema = 'public' AND table_name <> 'outbox' AND data_type = 'uuid'"
)


async def where_named(service: Matching, needles: list[str]) -> list[str]:
    """Every ``table.column ~ needle`` of matching's database whose text holds a needle.

    Text, character, JSON and tsvector columns, and arrays of text, are cast to text and
    searched case-insensitively. The outbox is left out: its rows are the events already
    sent, deleted by the relay after a week, like the topics' finite retention."""
    found = []
    async with service.sessions() as session:
        for table, column in (await session.execute(TEXT_COLUMNS)).all():
            for needle in needles:
                hits = await session.execute(
                    # Names from information_schema, not from input.
                    text(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE :needle'),  # noqa: S608
                    {"needle": f"%{needle}%"},
                )
                if hits.scalar_one():
                    found.append(f"{table}.{column} ~ {needle}")
    return found


async def where_id(service: Matching, member_id: UUID) -> list[str]:
    """Every uuid column (but the outbox and the kept ones) holding the member id."""
    found = []
    async with service.sessions() as session:
        for table, column in (await session.execute(UUID_COLUMNS)).all():
            if (table, column) in KEPT_IDS:
                continue
            hits = await session.execute(
                text(f'SELECT count(*) FROM "{table}" WHERE "{column}" = :id'),  # noqa: S608
                {"id": member_id},
            )
            if hits.scalar_one():
                found.append(f"{table}.{column}")
    return found


async def test_an_erased_member_disappears_from_candidates_proposals_missions_and_projects(
    matching: Matching,
    matching_url: str,
    identity_provider: LocalIssuer,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    topic = topic_prefix + REGISTRY_MEMBERS.name
    kafui, other = new_member_id(), new_member_id()
    doctor = {"occupations": [("2221", "Infirmière")], "country": "DE", "languages": ["fr"]}
    me = citizen(member_id=kafui)
    ministry = coordinator()
    async with running_worker(matching):
        await publish(
            kafka_bootstrap,
            topic,
            updated(kafui, profile(given_name=GIVEN, family_name=FAMILY, **doctor)),
            updated(other, profile(given_name="Yao", family_name="Agbo", **doctor)),
        )
        await wait_until(lambda: in_read_model(matching, kafui), timeout=60, message="expert")
        await wait_until(lambda: in_read_model(matching, other), timeout=60, message="expert")

        async with client(matching_url, identity_provider, ministry) as api:
            done_id = (await api.post("/needs", json=need("Soins infirmiers"))).json()["id"]
            open_id = (await api.post("/needs", json=need("Urgences", experts_wanted=2))).json()[
                "id"
            ]
            for need_id in (done_id, open_id):
                sent = await api.post(
                    f"/needs/{need_id}/proposals",
                    json={"member_ids": [str(kafui), str(other)]},
                )
                assert sent.status_code == 201, sent.text
            mine = {
                p["need_id"]: p["id"]
                for p in (await api.get("/proposals")).json()["items"]
                if p["member_id"] == str(kafui)
            }
        async with client(matching_url, identity_provider, me) as api:
            accepted = await api.post(f"/proposals/{mine[done_id]}/accept")
            mission_id = accepted.json()["mission_id"]
            project = await api.post(
                "/projects",
                json={
                    "title": f"Cabinet de soins de {GIVEN} à Sokodé",
                    "sector": "health",
                    "region": "TG-C",
                    "amount_sought": "15000",
                    "currency": "EUR",
                    "stage": "seed",
                    "description": f"Projet porté par {GIVEN} {FAMILY}, infirmière.",
                    "contact_name": f"{GIVEN} {FAMILY}",
                    "contact_email": EMAIL,
                    "contact_phone": PHONE,
                    "share_contact": True,
                },
            )
            assert project.status_code == 201, project.text
            project_id = project.json()["id"]
        async with client(matching_url, identity_provider, ministry) as api:
            agreed = await api.post(
                f"/missions/{mission_id}/agreement",
                json={
                    "starts_on": START.isoformat(),
                    "ends_on": (START + timedelta(days=10)).isoformat(),
                    "terms": f"{GIVEN} {FAMILY} forme l'équipe de nuit.",
                },
            )
            assert agreed.status_code == 200, agreed.text
            await api.put(
                f"/missions/{mission_id}/travel",
                json={"travel_out_on": START.isoformat(), "travel_back_on": START.isoformat()},
            )
            report = f"{GIVEN} a formé douze infirmiers aux soins d'urgence."
            assert (
                await api.put(f"/missions/{mission_id}/report", json={"report": report})
            ).status_code == 200
            assert (await api.post(f"/missions/{mission_id}/complete")).status_code == 200
        async with client(matching_url, identity_provider, caseworker("enabel")) as api:
            interest = await api.post(
                f"/projects/{project_id}/interest", json={"message": f"Bonjour {GIVEN} !"}
            )
            assert interest.status_code == 201
        # The scans see the person before the erasure (so that they can fail after it).
        assert len(await where_named(matching, [GIVEN, EMAIL, str(kafui)])) >= 5
        assert len(await where_id(matching, kafui)) >= 3

        handled = await handled_by_records(matching)
        await publish(
            kafka_bootstrap, topic, MemberErasedV1(member_id=kafui, erased_at=datetime.now(UTC))
        )
        await wait_until(
            lambda: _more_handled(matching, handled), timeout=60, message="erasure handled"
        )
        await wait_until(lambda: _absent(matching, kafui), timeout=60, message="expert removed")

    # Candidates: gone from the ranking; proposing to them is refused.
    async with client(matching_url, identity_provider, ministry) as api:
        ranked = (await api.get(f"/needs/{open_id}/candidates")).json()["items"]
        assert str(kafui) not in {c["member_id"] for c in ranked}
        refused = await api.post(f"/needs/{open_id}/proposals", json={"member_ids": [str(kafui)]})
        assert refused.status_code == 422
        listed = (await api.get("/proposals")).json()["items"]
        assert str(kafui) not in {p.get("member_id") for p in listed}
        # Their proposals stay as anonymous records: the accepted one still counts.
        kept = {p["need_id"]: p for p in listed if p["member_id"] is None}
        assert kept[done_id]["status"] == "accepted"
        assert (kept[open_id]["status"], kept[open_id]["withdraw_reason"]) == (
            "withdrawn",
            "member_erased",
        )
        assert "reasons" not in kept[done_id] or kept[done_id]["reasons"] is None
        # The mission stays counted, without the person.
        mission = (await api.get(f"/missions/{mission_id}")).json()
        assert mission["member_id"] is None
        assert mission["report"] is None
        assert mission["terms"] is None
        counts = await api.get(
            "/missions/statistics", params=[("by", "type"), ("by", "country"), ("exact", "true")]
        )
        assert counts.json()["cells"] == [{"type": "medical", "country": "DE", "missions": 1}]
        # The project and the interest in it are deleted.
        assert (await api.get(f"/projects/{project_id}")).status_code == 404
    async with client(matching_url, identity_provider, me) as api:
        assert (await api.get("/proposals")).json()["items"] == []
        assert (await api.get("/projects", params={"include_withdrawn": "true"})).json()[
            "items"
        ] == []
        assert (await api.get("/missions")).json()["items"] == []

    async with matching.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(projects))).scalar_one() == 0
        assert (
            await session.execute(select(func.count()).select_from(project_interests))
        ).scalar_one() == 0
        assert (
            await session.execute(
                select(func.count()).select_from(proposals).where(proposals.c.member_id == kafui)
            )
        ).scalar_one() == 0
        assert (
            await session.execute(
                select(func.count()).select_from(missions).where(missions.c.member_id == kafui)
            )
        ).scalar_one() == 0
    # No text column names them any more, nor holds their member id.
    needles = [GIVEN, FAMILY, EMAIL, PHONE, PHONE[1:], str(kafui)]
    assert await where_named(matching, needles) == []
    assert await where_id(matching, kafui) == []

    await publish_outbox(matching)
    matches = await events_on(matching, MATCHING_MATCHES, expect=8)
    withdrawn = [e for t, e in matches if t == "matching.match.withdrawn"]
    # Yao's proposal went when Kafui filled the first need; Kafui's pending one on erasure
    # (each in versions 1 and 2: version 1 can say both reasons).
    assert sorted((e.member_id is None, e.reason, e.event_version) for e in withdrawn) == [
        (False, "need_filled", 1),
        (False, "need_filled", 2),
        (True, "member_erased", 1),
        (True, "member_erased", 2),
    ]
    project_events = await events_on(matching, MATCHING_PROJECTS, expect=3)
    gone = [e for t, e in project_events if t == "matching.project.withdrawn"]
    assert [(str(e.project_id), e.reason) for e in gone] == [(project_id, "holder_erased")]


async def _more_handled(service: Matching, before: int) -> bool:
    return await handled_by_records(service) > before


async def _absent(service: Matching, member_id: UUID) -> bool:
    return not await in_read_model(service, member_id)


async def test_withdrawing_consent_withdraws_the_proposals_awaiting_an_answer(
    matching: Matching,
    matching_url: str,
    identity_provider: LocalIssuer,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    topic = topic_prefix + REGISTRY_MEMBERS.name
    afi = new_member_id()
    nurse = {"occupations": [("2221", "Infirmière")], "country": "BE", "languages": ["fr"]}
    ministry = coordinator()
    async with running_worker(matching):
        await publish(kafka_bootstrap, topic, updated(afi, profile(given_name="Afi", **nurse)))
        await wait_until(lambda: in_read_model(matching, afi), timeout=60, message="expert")
        async with client(matching_url, identity_provider, ministry) as api:
            answered = (await api.post("/needs", json=need("Soins infirmiers"))).json()["id"]
            pending = (await api.post("/needs", json=need("Urgences"))).json()["id"]
            for need_id in (answered, pending):
                sent = await api.post(
                    f"/needs/{need_id}/proposals", json={"member_ids": [str(afi)]}
                )
                assert sent.status_code == 201, sent.text
        async with client(matching_url, identity_provider, citizen(member_id=afi)) as api:
            mine = {p["need_id"]: p["id"] for p in (await api.get("/proposals")).json()["items"]}
            declined = await api.post(
                f"/proposals/{mine[answered]}/decline", json={"reason": "unavailable"}
            )
            assert declined.status_code == 200, declined.text

        # Afi withdraws the consent to be contacted for missions (a profile update).
        await publish(
            kafka_bootstrap, topic, updated(afi, profile(given_name="Afi", consent=False, **nurse))
        )

        async def withdrawn_and_gone() -> bool:
            gone = not await in_read_model(matching, afi)
            return gone and await _status(matching, mine[pending]) == "withdrawn"

        await wait_until(withdrawn_and_gone, timeout=60, message="proposal withdrawn")

    async with client(matching_url, identity_provider, citizen(member_id=afi)) as api:
        by_need = {p["need_id"]: p for p in (await api.get("/proposals")).json()["items"]}
        assert (by_need[pending]["status"], by_need[pending]["withdraw_reason"]) == (
            "withdrawn",
            "consent_withdrawn",
        )
        # The answer already given stays; no answer is possible any more.
        assert by_need[answered]["status"] == "declined"
        assert (await api.post(f"/proposals/{mine[pending]}/accept")).status_code == 409
    async with client(matching_url, identity_provider, ministry) as api:
        candidates = await api.get(f"/needs/{pending}/candidates")
        assert candidates.status_code == 200, candidates.text
        assert str(afi) not in {c["member_id"] for c in candidates.json()["items"]}

    await publish_outbox(matching)
    matches = await events_on(matching, MATCHING_MATCHES, expect=4)
    withdrawn = [e for t, e in matches if t == "matching.match.withdrawn"]
    # Version 1 cannot say this reason: version 2 only.
    assert [(e.event_version, str(e.proposal_id), e.reason) for e in withdrawn] == [
        (2, mine[pending], "consent_withdrawn")
    ]


async def _status(service: Matching, proposal_id: str) -> str:
    async with service.sessions() as session:
        found = await session.execute(
            select(proposals.c.status).where(proposals.c.id == UUID(proposal_id))
        )
    return str(found.scalar_one())
