"""Missions against the real database and broker: from an accepted proposal through
agreement, travel, report and completion, who may do each step, and the counts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from matching_testing import events_on, publish_outbox
from matching_testing.experts import new_member_id, profile
from sqlalchemy import insert, select
from uuid_utils.compat import uuid7

from diaspora_events.contracts import MissionAgreedV1, MissionCompletedV1
from diaspora_events.topics import MATCHING_MISSIONS
from diaspora_identity.testing import LocalIssuer, Persona, analyst, citizen, coordinator
from matching.experts.projection import apply_profile
from matching.missions.tables import missions
from matching.needs.tables import needs
from matching.proposals.tables import proposals
from matching.resources import Matching

pytestmark = pytest.mark.integration

START = date.today() + timedelta(days=45)


def client(base_url: str, issuer: LocalIssuer, persona: Persona) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=10, headers=issuer.headers(persona))


async def accepted_mission(
    service: Matching, base_url: str, issuer: LocalIssuer, **need_fields: Any
) -> tuple[UUID, str]:
    """An expert accepts a proposed need; returns the expert and their mission's id."""
    expert = new_member_id()
    async with service.sessions() as session, session.begin():
        await apply_profile(
            session,
            expert,
            profile(occupations=["2310"], country="BE", remote=True),
            datetime.now(UTC),
        )
    body = {
        "title": "Cours de génie civil",
        "type": "teaching",
        "institution": "Université de Lomé",
        "institution_kind": "university",
        "occupations": ["2310"],
        "starts_on": START.isoformat(),
        "ends_on": (START + timedelta(days=20)).isoformat(),
        "region": "TG-M",
        "prefecture": "Golfe",
        "publish": True,
        **need_fields,
    }
    async with client(base_url, issuer, coordinator()) as api:
        posted = await api.post("/needs", json=body)
        assert posted.status_code == 201, posted.text
        sent = await api.post(
            f"/needs/{posted.json()['id']}/proposals", json={"member_ids": [str(expert)]}
        )
        assert sent.status_code == 201, sent.text
        proposal_id = sent.json()["items"][0]["id"]
    async with client(base_url, issuer, citizen(member_id=expert)) as api:
        accepted = await api.post(f"/proposals/{proposal_id}/accept")
        assert accepted.status_code == 200, accepted.text
    return expert, accepted.json()["mission_id"]


async def test_a_mission_from_agreement_to_completion(
    matching: Matching, matching_url: str, identity_provider: LocalIssuer
) -> None:
    expert, mission_id = await accepted_mission(matching, matching_url, identity_provider)
    ministry = coordinator()
    me = citizen(member_id=expert)
    stranger = citizen(member_id=new_member_id())
    url = f"/missions/{mission_id}"

    async with client(matching_url, identity_provider, me) as api:
        mine = await api.get(url)
        assert mine.status_code == 200, mine.text
        assert (mine.json()["status"], mine.json()["country_of_residence"]) == (
            "awaiting_agreement",
            "BE",
        )
        # The expert does not agree terms alone, nor travel before the agreement.
        terms = {"starts_on": START.isoformat(), "ends_on": START.isoformat(), "terms": "x"}
        assert (await api.post(f"{url}/agreement", json=terms)).status_code == 403
        early = await api.put(
            f"{url}/travel",
            json={"travel_out_on": START.isoformat(), "travel_back_on": START.isoformat()},
        )
        assert early.status_code == 409
    async with client(matching_url, identity_provider, stranger) as api:
        assert (await api.get(url)).status_code == 404
        assert (await api.get("/missions")).json()["items"] == []
        report = {"report": "Un rapport qui n'est pas le mien du tout."}
        assert (await api.put(f"{url}/report", json=report)).status_code == 404

    async with client(matching_url, identity_provider, ministry) as api:
        backwards = await api.post(
            f"{url}/agreement",
            json={
                "starts_on": START.isoformat(),
                "ends_on": (START - timedelta(days=1)).isoformat(),
                "terms": "Cours",
            },
        )
        assert backwards.status_code == 422
        agreed = await api.post(
            f"{url}/agreement",
            json={
                "starts_on": (START + timedelta(days=1)).isoformat(),
                "ends_on": (START + timedelta(days=15)).isoformat(),
                "terms": "Douze heures de cours, hébergement et billet pris en charge.",
            },
            headers={"If-Match": '"1"'},
        )
        assert agreed.status_code == 200, agreed.text
        assert agreed.json()["status"] == "agreed"
        again = await api.post(
            f"{url}/agreement",
            json={"starts_on": START.isoformat(), "ends_on": START.isoformat(), "terms": "x"},
        )
        assert again.status_code == 409
        # An on-site mission needs its report and travel dates before it completes.
        not_yet = await api.post(f"{url}/complete")
        assert not_yet.status_code == 409
        assert "report" in not_yet.json()["detail"]

    async with client(matching_url, identity_provider, me) as api:
        outside = await api.put(
            f"{url}/travel",
            json={
                "travel_out_on": (START + timedelta(days=30)).isoformat(),
                "travel_back_on": (START + timedelta(days=35)).isoformat(),
            },
        )
        assert outside.status_code == 422
        travel = await api.put(
            f"{url}/travel",
            json={
                "travel_out_on": START.isoformat(),
                "travel_back_on": (START + timedelta(days=16)).isoformat(),
            },
        )
        assert travel.status_code == 200, travel.text
        assert travel.json()["status"] == "travel_booked"
        stale = await api.put(
            f"{url}/report",
            json={"report": "Deux semaines de cours de béton armé en licence."},
            headers={"If-Match": '"2"'},
        )
        assert stale.status_code == 412
        assert stale.headers["etag"] == travel.headers["etag"]
        report = await api.put(
            f"{url}/report",
            json={"report": "Deux semaines de cours de béton armé en licence, 40 étudiants."},
            headers={"If-Match": travel.headers["etag"]},
        )
        assert report.status_code == 200, report.text
        assert (await api.post(f"{url}/complete")).status_code == 403

    async with client(matching_url, identity_provider, ministry) as api:
        done = await api.post(f"{url}/complete")
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "completed"
        assert (await api.post(f"{url}/complete")).status_code == 409
        assert (await api.post(f"{url}/cancel", json={})).status_code == 409
        listed = (await api.get("/missions", params={"status": "completed"})).json()["items"]
        assert [m["id"] for m in listed] == [mission_id]
        assert listed[0]["report"].startswith("Deux semaines")

    await publish_outbox(matching)
    events = [e for t, e in await events_on(matching, MATCHING_MISSIONS, expect=2)]
    agreed_event, completed_event = events
    assert isinstance(agreed_event, MissionAgreedV1)
    assert agreed_event.member_id == expert
    assert (agreed_event.facts.type, agreed_event.facts.region) == ("teaching", "TG-M")
    assert agreed_event.facts.country_of_residence == "BE"
    assert isinstance(completed_event, MissionCompletedV1)
    assert completed_event.starts_on == START + timedelta(days=1)


async def test_a_remote_mission_completes_without_travel_and_can_be_cancelled_before(
    matching: Matching, matching_url: str, identity_provider: LocalIssuer
) -> None:
    _expert, remote_id = await accepted_mission(
        matching, matching_url, identity_provider, work_mode="remote", title="Cours à distance"
    )
    _other, cancelled_id = await accepted_mission(matching, matching_url, identity_provider)
    async with client(matching_url, identity_provider, coordinator()) as api:
        terms = {
            "starts_on": START.isoformat(),
            "ends_on": (START + timedelta(days=5)).isoformat(),
            "terms": "Cours en visioconférence.",
        }
        assert (await api.post(f"/missions/{remote_id}/agreement", json=terms)).status_code == 200
        report = {"report": "Cinq séances en ligne, supports partagés avec l'université."}
        assert (await api.put(f"/missions/{remote_id}/report", json=report)).status_code == 200
        done = await api.post(f"/missions/{remote_id}/complete")
        assert done.status_code == 200, done.text
        cancelled = await api.post(
            f"/missions/{cancelled_id}/cancel", json={"reason": "Budget gelé"}
        )
        assert cancelled.json()["status"] == "cancelled"
        assert (await api.post(f"/missions/{cancelled_id}/agreement", json=terms)).status_code == (
            409
        )


async def add_counted(
    service: Matching, need_id: UUID, *, type_: str, region: str, country: str, n: int
) -> None:
    """Completed missions to count (the rows the flow above produces, written directly)."""
    async with service.sessions() as session, session.begin():
        for _ in range(n):
            proposal_id = uuid7()
            await session.execute(
                insert(proposals).values(
                    id=proposal_id,
                    need_id=need_id,
                    member_id=uuid7(),
                    status="accepted",
                    score=50.0,
                    proposed_by="test",
                )
            )
            await session.execute(
                insert(missions).values(
                    id=uuid7(),
                    proposal_id=proposal_id,
                    need_id=need_id,
                    member_id=None,
                    type=type_,
                    region=region,
                    country_of_residence=country,
                    status="completed",
                    completed_at=datetime.now(UTC),
                )
            )


async def test_counts_by_type_region_and_country_with_small_cells_suppressed(
    matching: Matching, matching_url: str, identity_provider: LocalIssuer
) -> None:
    async with client(matching_url, identity_provider, coordinator()) as api:
        posted = await api.post(
            "/needs",
            json={
                "title": "Appui",
                "type": "teaching",
                "institution": "Université de Kara",
                "institution_kind": "university",
                "region": "TG-K",
                "publish": True,
            },
        )
        assert posted.status_code == 201, posted.text
    need_id = UUID(posted.json()["id"])
    await add_counted(matching, need_id, type_="teaching", region="TG-K", country="FR", n=6)
    await add_counted(matching, need_id, type_="teaching", region="TG-K", country="BE", n=5)
    await add_counted(matching, need_id, type_="medical", region="TG-S", country="DE", n=2)
    async with matching.sessions() as session:
        assert len((await session.execute(select(missions.c.id))).all()) == 13
        assert (await session.execute(select(needs.c.id))).scalar_one() == need_id

    params = [("by", "type"), ("by", "country")]
    async with client(matching_url, identity_provider, analyst()) as api:
        counted = await api.get("/missions/statistics", params=params)
        assert counted.status_code == 200, counted.text
        table = counted.json()
        assert (table["exact"], table["total"]) == (False, 13)
        cells = {(c["type"], c["country"]): c["missions"] for c in table["cells"]}
        # DE's 2 are under 5; BE's 5 is hidden too, or DE = 13 - 6 - 5.
        assert cells == {("teaching", "FR"): 6, ("teaching", "BE"): None, ("medical", "DE"): None}
        exact = await api.get("/missions/statistics", params=[*params, ("exact", "true")])
        assert exact.status_code == 403
        # Two regions and a published total: showing Kara's 11 would give Savanes' 2.
        by_region = (await api.get("/missions/statistics", params={"by": "region"})).json()
        assert by_region["total"] == 13
        assert {c["region"]: c["missions"] for c in by_region["cells"]} == {
            "TG-K": None,
            "TG-S": None,
        }
    async with client(matching_url, identity_provider, coordinator()) as api:
        exact = await api.get("/missions/statistics", params=[*params, ("exact", "true")])
        cells = {(c["type"], c["country"]): c["missions"] for c in exact.json()["cells"]}
        assert cells == {("teaching", "FR"): 6, ("teaching", "BE"): 5, ("medical", "DE"): 2}
        assert (await api.get("/missions/statistics", params={"by": "nope"})).status_code == 422
    async with client(matching_url, identity_provider, citizen(member_id=uuid7())) as api:
        assert (await api.get("/missions/statistics")).status_code == 403
