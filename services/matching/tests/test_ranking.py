"""Ranking on a small hand-built pool (loaded through the read model's projection):
hard filters, order, score and reasons, the audited candidates endpoint, who may read
it, and an erased expert leaving the candidates within seconds (over the broker)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from matching_testing.experts import new_member_id, profile, publish, updated
from sqlalchemy import select

from diaspora_devstack.testing import wait_until
from diaspora_events.contracts.registry import MemberErasedV1
from diaspora_events.topics import REGISTRY_MEMBERS
from diaspora_identity.testing import LocalIssuer, analyst, caseworker, citizen, coordinator
from matching.entrypoints.worker import run
from matching.experts.projection import apply_event
from matching.ranking.service import candidates_among
from matching.resources import Matching
from matching.tables import audit_log

pytestmark = pytest.mark.integration

SURGERY = "http://data.europa.eu/esco/skill/508f3b4c-799a-4742-b3ae-75f2ff11153d"
STARTS = date.today() + timedelta(days=60)
ENDS = STARTS + timedelta(days=30)


def need_body() -> dict[str, Any]:
    return {
        "title": "Enseignant de chirurgie",
        "type": "teaching",
        "institution": "Université de Lomé",
        "institution_kind": "university",
        "description": "Cours de chirurgie et pédagogie médicale pour les internes.",
        "occupations": ["2212"],
        "skills": [{"esco_uri": SURGERY}, {"label": "pédagogie médicale"}],
        "min_isced_level": 7,
        "languages": ["fr"],
        "starts_on": STARTS.isoformat(),
        "ends_on": ENDS.isoformat(),
        "region": "TG-M",
        "publish": True,
    }


POOL: dict[str, dict[str, Any]] = {
    # The specialist: same unit group, both skills, long experience, a doctorate.
    "surgeon": {
        "given_name": "Kossi",
        "languages": ["fr", "en"],
        "occupations": [("2212", "Chirurgien")],
        "skills": [(SURGERY, "chirurgie"), "pédagogie médicale"],
        "education": [(8, "médecine")],
        "experience": [("Chirurgien viscéral", "2212", 2008, None)],
    },
    # A university teacher who worked as a surgeon: the unit group through experience.
    "teacher": {
        "given_name": "Afi",
        "occupations": [("2310", "Enseignante à l'université")],
        "skills": ["pédagogie médicale"],
        "education": [(7, "médecine")],
        "experience": [("Chirurgienne", "2212", 2014, 2022)],
    },
    # A generalist: same minor group (221), surgery as free text.
    "generalist": {
        "given_name": "Yao",
        "occupations": [("2211", "Médecin généraliste")],
        "skills": ["chirurgie"],
        "education": [(7, "médecine")],
        "experience": [("Médecin de district", "2211", 2019, None)],
    },
    # A nurse: same sub-major group (22) only.
    "nurse": {
        "given_name": "Dzifa",
        "occupations": [("2221", "Infirmière")],
        "skills": ["soins infirmiers"],
        "education": [(7, "sciences infirmières")],
    },
    # Each fails one hard filter.
    "english_only": {
        "given_name": "John",
        "preferred_language": "en",
        "languages": ["en"],
        "occupations": ["2212"],
        "skills": [(SURGERY, "surgery")],
        "education": [8],
    },
    "busy": {
        "given_name": "Komi",
        "occupations": ["2212"],
        "skills": [(SURGERY, "chirurgie")],
        "education": [8],
        "available_until": STARTS + timedelta(days=10),
    },
    "no_teaching": {
        "given_name": "Ama",
        "occupations": ["2212"],
        "skills": [(SURGERY, "chirurgie")],
        "education": [8],
        "mission_types": ["medical"],
    },
    "bachelor": {
        "given_name": "Sena",
        "occupations": ["2212"],
        "skills": [(SURGERY, "chirurgie")],
        "education": [6],
    },
    "no_consent": {
        "given_name": "Edem",
        "occupations": ["2212"],
        "skills": [(SURGERY, "chirurgie")],
        "education": [8],
        "consent": False,
    },
    # Passes every filter, but nothing of the need in the profile: not ranked.
    "developer": {
        "given_name": "Mawuli",
        "occupations": [("2512", "Développeur")],
        "skills": ["python"],
        "education": [7],
    },
}


@pytest.fixture
async def pool(matching: Matching) -> dict[str, UUID]:
    ids = {name: new_member_id() for name in POOL}
    now = datetime.now(UTC)
    async with matching.sessions() as session, session.begin():
        for name, attributes in POOL.items():
            await apply_event(session, updated(ids[name], profile(**attributes)), now)
    return ids


@pytest.fixture
async def as_coordinator(
    matching_url: str, identity_provider: LocalIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=matching_url, timeout=20, headers=identity_provider.headers(coordinator())
    ) as client:
        yield client


async def test_candidates_are_filtered_ranked_and_explained(
    matching: Matching, pool: dict[str, UUID], as_coordinator: httpx.AsyncClient
) -> None:
    need = (await as_coordinator.post("/needs", json=need_body())).json()
    answer = await as_coordinator.get(f"/needs/{need['id']}/candidates", params={"lang": "en"})
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    by_id = {UUID(i["member_id"]): i for i in items}
    names = {v: k for k, v in pool.items()}
    assert [names[UUID(i["member_id"])] for i in items] == [
        "surgeon",
        "teacher",
        "generalist",
        "nurse",
    ]
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)
    assert [i["rank"] for i in items] == [1, 2, 3, 4]

    def texts(name: str) -> list[str]:
        return [r["text"] for r in by_id[pool[name]]["reasons"]]

    surgeon = texts("surgeon")
    assert "same ISCO unit group 2212 Specialist medical practitioners" in surgeon
    assert "2 of 2 required skills: chirurgie, pédagogie médicale" in surgeon
    assert "speaks French" in surgeon
    assert any(t.startswith("ISCED 8 (doctoral or equivalent)") for t in surgeon)
    assert any(t.startswith("available for teaching missions") for t in surgeon)
    assert any("year(s) of experience in related occupations" in t for t in surgeon)
    teacher = texts("teacher")
    assert (
        "same ISCO unit group 2212 Specialist medical practitioners — from work experience"
        in teacher
    )
    generalist = texts("generalist")
    assert (
        "same ISCO minor group 221 Medical doctors (2211 Generalist medical practitioners)"
        in generalist
    )
    assert "1 of 2 required skills: chirurgie; missing: pédagogie médicale" in generalist
    assert "same ISCO sub-major group 22 Health professionals (2221 Nursing professionals)" in (
        texts("nurse")
    )
    # The points of the scored reasons add up to the score.
    for item in items:
        points = sum(r["points"] for r in item["reasons"])
        assert points == pytest.approx(item["score"], abs=0.05)

    # French by default.
    french = await as_coordinator.get(f"/needs/{need['id']}/candidates", params={"limit": 1})
    assert [i["member_id"] for i in french.json()["items"]] == [str(pool["surgeon"])]
    assert "parle français" in [r["text"] for r in french.json()["items"][0]["reasons"]]

    # Every candidate shown is an audited read of their data.
    async with matching.sessions() as session:
        audited = (
            await session.execute(
                select(audit_log.c.record_id, audit_log.c.resource, audit_log.c.action)
            )
        ).all()
    assert len(audited) == len(items) + 1
    assert {r.record_id for r in audited} == {UUID(i["member_id"]) for i in items}
    assert {(r.resource, r.action) for r in audited} == {("expert_candidate", "rank")}


async def test_proposals_learn_why_someone_is_no_candidate(
    matching: Matching, pool: dict[str, UUID], as_coordinator: httpx.AsyncClient
) -> None:
    need = (await as_coordinator.post("/needs", json=need_body())).json()
    async with matching.sessions() as session:
        from matching.needs.service import get_need

        row = await get_need(session, UUID(need["id"]))
        verdicts = await candidates_among(
            session,
            row,
            [pool[n] for n in ("surgeon", "developer", "english_only", "busy", "no_consent")],
        )
    surgeon = verdicts[pool["surgeon"]]
    assert not isinstance(surgeon, str)
    assert surgeon.score > 80
    assert surgeon.reasons[0]["code"] == "occupation"
    developer = verdicts[pool["developer"]]
    assert not isinstance(developer, str)  # a coordinator's own choice stays possible
    assert developer.score < 10
    assert verdicts[pool["english_only"]] == "does not speak fr"
    assert str(verdicts[pool["busy"]]).startswith("available only until")
    assert str(verdicts[pool["no_consent"]]).startswith("not a candidate: no consent")


async def test_who_may_read_candidates(
    matching_url: str, identity_provider: LocalIssuer, as_coordinator: httpx.AsyncClient
) -> None:
    need = (await as_coordinator.post("/needs", json=need_body())).json()
    path = f"/needs/{need['id']}/candidates"
    for persona in (citizen(), analyst(), caseworker("croix-rouge")):
        async with httpx.AsyncClient(
            base_url=matching_url, timeout=20, headers=identity_provider.headers(persona)
        ) as client:
            refused = await client.get(path)
            assert refused.status_code == 403, persona
            assert refused.headers["content-type"].startswith("application/problem+json")
    async with httpx.AsyncClient(base_url=matching_url, timeout=20) as anonymous:
        assert (await anonymous.get(path)).status_code == 401
    unknown = await as_coordinator.get(f"/needs/{new_member_id()}/candidates")
    assert unknown.status_code == 404
    await as_coordinator.post(f"/needs/{need['id']}/status", json={"status": "cancelled"})
    assert (await as_coordinator.get(path)).status_code == 409


async def test_an_erased_expert_leaves_the_candidates_within_seconds(
    matching: Matching,
    pool: dict[str, UUID],
    as_coordinator: httpx.AsyncClient,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    need = (await as_coordinator.post("/needs", json=need_body())).json()
    path = f"/needs/{need['id']}/candidates"
    before = [i["member_id"] for i in (await as_coordinator.get(path)).json()["items"]]
    assert str(pool["surgeon"]) in before
    stop = asyncio.Event()
    worker = asyncio.create_task(run(matching_for_worker(matching), stop))
    try:
        await publish(
            kafka_bootstrap,
            topic_prefix + REGISTRY_MEMBERS.name,
            MemberErasedV1(member_id=pool["surgeon"], erased_at=datetime.now(UTC)),
        )

        async def gone() -> bool:
            items = (await as_coordinator.get(path)).json()["items"]
            return str(pool["surgeon"]) not in [i["member_id"] for i in items]

        await wait_until(gone, timeout=30, message="the erased expert to leave the candidates")
    finally:
        stop.set()
        await asyncio.wait_for(worker, timeout=30)
    after = [i["member_id"] for i in (await as_coordinator.get(path)).json()["items"]]
    assert after == before[1:]


def matching_for_worker(service: Matching) -> Matching:
    """A second composition root on the same settings: the worker closes what it owns."""
    from matching.bootstrap import bootstrap

    return bootstrap(service.settings)
