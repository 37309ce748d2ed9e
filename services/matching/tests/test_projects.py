"""Project holders' platform against the real database and broker: submit, change,
search, express interest, who sees what."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
import pytest
from matching_testing import events_on, publish_outbox
from sqlalchemy import select
from uuid_utils.compat import uuid7

from diaspora_events.contracts import (
    InterestExpressedV1,
    ProjectSubmittedV1,
    ProjectUpdatedV1,
    ProjectWithdrawnV1,
)
from diaspora_events.topics import MATCHING_AUDIT, MATCHING_PROJECTS
from diaspora_identity.testing import (
    LocalIssuer,
    Persona,
    analyst,
    caseworker,
    citizen,
    coordinator,
    officer,
)
from matching.resources import Matching
from matching.tables import audit_log

pytestmark = pytest.mark.integration

CONTACT = {"contact_name", "contact_email", "contact_phone"}


def project(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Unité de transformation de soja à Atakpamé",
        "sector": "agri_food",
        "region": "Plateaux",
        "prefecture": "Ogou",
        "amount_sought": "25000000",
        "currency": "XOF",
        "stage": "feasibility",
        "partners_wanted": ["investor", "technical"],
        "description": "Transformer le soja local en lait et tourteaux pour les éleveurs.",
        "contact_name": "Komi Adjo",
        "contact_email": "komi.adjo@example.org",
        "contact_phone": "+33 6 12 34 56 78",
    }
    body.update(overrides)
    return body


def client(base_url: str, issuer: LocalIssuer, persona: Persona) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=10, headers=issuer.headers(persona))


def holder() -> Persona:
    return citizen(member_id=UUID(str(uuid7())))


async def test_a_member_submits_changes_and_withdraws_a_project_with_events(
    matching: Matching, matching_url: str, identity_provider: LocalIssuer
) -> None:
    me = holder()
    async with client(matching_url, identity_provider, me) as api:
        first = await api.post("/projects", json=project(), headers={"Idempotency-Key": "k1"})
        assert first.status_code == 201, first.text
        created = first.json()
        assert created["holder_id"] == str(me.member_id)
        assert (created["region"], created["prefecture"]) == ("TG-P", "ogou")
        assert created["contact_phone"] == "+33612345678"
        assert Decimal(created["amount_sought"]) == Decimal("25000000")
        assert first.headers["location"] == f"/projects/{created['id']}"
        again = await api.post("/projects", json=project(), headers={"Idempotency-Key": "k1"})
        assert (again.status_code, again.json()["id"]) == (200, created["id"])
        reused = await api.post(
            "/projects", json=project(title="Autre chose"), headers={"Idempotency-Key": "k1"}
        )
        assert reused.status_code == 422

        pid = created["id"]
        changed = await api.patch(
            f"/projects/{pid}",
            json={"amount_sought": "30000000", "stage": "seed"},
            headers={"If-Match": first.headers["etag"]},
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["revision"] == 2
        stale = await api.patch(
            f"/projects/{pid}", json={"title": "Plus tard"}, headers={"If-Match": '"1"'}
        )
        assert stale.status_code == 412
        assert stale.headers["etag"] == '"2"'
        # A change of contact only is not published (contacts never travel in events).
        contact_only = await api.patch(f"/projects/{pid}", json={"contact_email": None})
        assert contact_only.status_code == 200
        unreachable = await api.patch(f"/projects/{pid}", json={"contact_phone": None})
        assert unreachable.status_code == 422
        elsewhere = await api.patch(f"/projects/{pid}", json={"prefecture": "Golfe"})
        assert elsewhere.status_code == 422  # Golfe is in the Maritime region
        moved = await api.patch(f"/projects/{pid}", json={"region": "TG-M", "prefecture": "golfe"})
        assert (moved.json()["region"], moved.json()["prefecture"]) == ("TG-M", "golfe")

        withdrawn = await api.post(f"/projects/{pid}/withdraw")
        assert withdrawn.json()["status"] == "withdrawn"
        closed = await api.patch(f"/projects/{pid}", json={"title": "Encore"})
        assert closed.status_code == 409
        mine = await api.get("/projects", params={"include_withdrawn": "true"})
        assert [p["id"] for p in mine.json()["items"]] == [pid]

    await publish_outbox(matching)
    events = await events_on(matching, MATCHING_PROJECTS, expect=4)
    kinds = [(t, e) for t, e in events if str(e.project_id) == pid]
    assert [t for t, _ in kinds] == [
        "matching.project.submitted",
        "matching.project.updated",
        "matching.project.updated",
        "matching.project.withdrawn",
    ]
    submitted = kinds[0][1]
    assert isinstance(submitted, ProjectSubmittedV1)
    assert submitted.holder_id == me.member_id
    assert submitted.project.amount_sought == Decimal("25000000")
    update = kinds[1][1]
    assert isinstance(update, ProjectUpdatedV1)
    assert update.changed_fields == ["amount_sought", "stage"]
    assert kinds[2][1].changed_fields == ["prefecture", "region"]  # type: ignore[union-attr]
    assert isinstance(kinds[3][1], ProjectWithdrawnV1)
    # The holder's contact never leaves the service in an event.
    for _, event in kinds:
        assert "komi" not in event.model_dump_json().lower()


async def test_bad_projects_are_refused_with_problem_details(
    matching_url: str, identity_provider: LocalIssuer
) -> None:
    async with client(matching_url, identity_provider, holder()) as api:
        for bad in (
            project(region="Bretagne"),
            project(prefecture="Golfe"),  # not in Plateaux
            project(currency="USD"),
            project(stage="mature"),
            project(sector="weapons"),
            project(amount_sought="-5"),
            project(amount_sought="12.345"),
            project(contact_email=None, contact_phone=None),
            project(contact_email="not-an-email"),
        ):
            response = await api.post("/projects", json=bad)
            assert response.status_code == 422, bad
            assert response.headers["content-type"] == "application/problem+json"
    # A citizen token without a member id (not registered yet) cannot submit.
    async with client(matching_url, identity_provider, citizen()) as api:
        refused = await api.post("/projects", json=project())
        assert refused.status_code == 403
        assert refused.json()["title"] == "Not registered"
    # Staff do not submit projects in people's names.
    async with client(matching_url, identity_provider, coordinator()) as api:
        assert (await api.post("/projects", json=project())).status_code == 403


async def test_partners_search_without_the_holders_contact_unless_shared(
    matching: Matching, matching_url: str, identity_provider: LocalIssuer
) -> None:
    ama, kossi, other = holder(), holder(), holder()
    async with client(matching_url, identity_provider, ama) as api:
        soja = (await api.post("/projects", json=project())).json()
        solar = (
            await api.post(
                "/projects",
                json=project(
                    title="Kits solaires pour les centres de santé",
                    sector="energy",
                    region="TG-S",
                    prefecture="Tône",
                    amount_sought="40000",
                    currency="EUR",
                    stage="seed",
                    description="Installer des kits photovoltaïques dans les dispensaires.",
                    share_contact=True,
                ),
            )
        ).json()
    async with client(matching_url, identity_provider, kossi) as api:
        school = (
            await api.post(
                "/projects",
                json=project(
                    title="École numérique de Kara",
                    sector="education",
                    region="TG-K",
                    prefecture="Kozah",
                    amount_sought="8000000",
                    stage="idea",
                    description="Former les jeunes au développement web.",
                ),
            )
        ).json()

    partner = caseworker("giz-togo")
    async with client(matching_url, identity_provider, partner) as api:
        everything = (await api.get("/projects")).json()["items"]
        assert {p["id"] for p in everything} == {soja["id"], solar["id"], school["id"]}
        by_id = {p["id"]: p for p in everything}
        # No holder id; contact only where the holder chose to share it.
        assert all("holder_id" not in p for p in everything)
        assert not CONTACT & set(by_id[soja["id"]])
        assert not CONTACT & set(by_id[school["id"]])
        assert by_id[solar["id"]]["contact_email"] == "komi.adjo@example.org"

        async def ids(**params: Any) -> set[str]:
            response = await api.get("/projects", params=params)
            assert response.status_code == 200, response.text
            return {p["id"] for p in response.json()["items"]}

        assert await ids(sector="energy") == {solar["id"]}
        assert await ids(region="Savanes") == {solar["id"]}
        assert await ids(prefecture="kozah") == {school["id"]}
        assert await ids(stage="idea") == {school["id"]}
        # 40,000 EUR is 26,238,280 XOF: amounts compare at the fixed parity.
        assert await ids(amount_min="26000000") == {solar["id"]}
        assert await ids(amount_min="20000000", amount_max="26000000") == {soja["id"]}
        assert await ids(amount_max="15000", amount_currency="EUR") == {school["id"]}
        assert await ids(q="soja") == {soja["id"]}
        assert await ids(q="photovoltaïques dispensaires") == {solar["id"]}
        assert await ids(q="école numérique") == {school["id"]}
        assert (await api.get("/projects", params={"region": "Bretagne"})).status_code == 422
        one = await api.get(f"/projects/{soja['id']}")
        assert one.status_code == 200
        assert not CONTACT & set(one.json())

    # An embassy officer reads like a partner; the ministry sees the holder's contact.
    async with client(matching_url, identity_provider, officer("fr-paris")) as api:
        seen = (await api.get(f"/projects/{soja['id']}")).json()
        assert "holder_id" not in seen
        assert not CONTACT & set(seen)
    async with client(matching_url, identity_provider, coordinator()) as api:
        seen = (await api.get(f"/projects/{soja['id']}")).json()
        assert seen["holder_id"] == str(ama.member_id)
        assert seen["contact_email"] == "komi.adjo@example.org"
    # A citizen sees only their own projects; an analyst has no access to projects.
    async with client(matching_url, identity_provider, other) as api:
        assert (await api.get("/projects")).json()["items"] == []
        assert (await api.get(f"/projects/{soja['id']}")).status_code == 404
        assert (await api.patch(f"/projects/{soja['id']}", json={"title": "Mine"})).status_code == (
            404
        )
        assert (await api.post(f"/projects/{soja['id']}/withdraw")).status_code == 404
    async with client(matching_url, identity_provider, analyst()) as api:
        assert (await api.get("/projects")).status_code == 403

    # Staff reads of a holder's contact are audited, keyed by the holder's member id:
    # the coordinator's read, and the partner's reads of the shared contact.
    async with matching.sessions() as session:
        entries = (await session.execute(select(audit_log))).all()
    audited = {(e.resource, e.record_id, tuple(e.actor_roles)) for e in entries}
    assert ("project", ama.member_id, ("ministry_coordinator",)) in audited
    assert ("project", ama.member_id, ("partner_caseworker",)) in audited
    assert all(
        e.record_id != kossi.member_id or "partner_caseworker" not in e.actor_roles for e in entries
    )
    await publish_outbox(matching)
    audit_events = await events_on(matching, MATCHING_AUDIT, expect=len(entries))
    assert len(audit_events) == len(entries)


async def test_interest_reaches_the_holder_and_partners_see_only_their_own(
    matching: Matching, matching_url: str, identity_provider: LocalIssuer
) -> None:
    me = holder()
    async with client(matching_url, identity_provider, me) as api:
        pid = (await api.post("/projects", json=project())).json()["id"]
    giz = dataclasses.replace(
        caseworker("giz-togo"), extra={"name": "Afi Lawson", "email": "afi.lawson@giz.example"}
    )
    enabel = caseworker("enabel")
    ministry = coordinator()
    async with client(matching_url, identity_provider, giz) as api:
        first = await api.post(f"/projects/{pid}/interest", json={"message": "Parlons-en."})
        assert first.status_code == 201, first.text
        assert first.json()["organisation"] == "giz-togo"
        repeat = await api.post(f"/projects/{pid}/interest", json={"message": "Encore ?"})
        assert (repeat.status_code, repeat.json()["id"]) == (200, first.json()["id"])
        unknown = await api.post(f"/projects/{uuid7()}/interest", json={})
        assert unknown.status_code == 404
    async with client(matching_url, identity_provider, enabel) as api:
        assert (await api.post(f"/projects/{pid}/interest", json={})).status_code == 201
        theirs = (await api.get(f"/projects/{pid}/interest")).json()["items"]
        assert [i["organisation"] for i in theirs] == ["enabel"]
    async with client(matching_url, identity_provider, ministry) as api:
        assert (await api.post(f"/projects/{pid}/interest", json={})).status_code == 201
        assert len((await api.get(f"/projects/{pid}/interest")).json()["items"]) == 3
    async with client(
        matching_url, identity_provider, citizen(member_id=UUID(str(uuid7())))
    ) as api:
        assert (await api.post(f"/projects/{pid}/interest", json={})).status_code == 403
        assert (await api.get(f"/projects/{pid}/interest")).status_code == 404
    async with client(matching_url, identity_provider, me) as api:
        seen = (await api.get(f"/projects/{pid}/interest")).json()["items"]
        assert [i["organisation"] for i in seen] == ["giz-togo", "enabel", "ministry"]
        assert seen[0]["actor_name"] == "Afi Lawson"
        assert seen[0]["actor_email"] == "afi.lawson@giz.example"
        assert seen[0]["message"] == "Parlons-en."
        await api.post(f"/projects/{pid}/withdraw")
    async with client(matching_url, identity_provider, giz) as api:
        assert (await api.post(f"/projects/{pid}/interest", json={})).status_code == 409

    await publish_outbox(matching)
    events = await events_on(matching, MATCHING_PROJECTS, expect=5)
    interest = [e for t, e in events if t == "matching.interest.expressed"]
    assert len(interest) == 3  # the repeat published nothing
    assert all(isinstance(e, InterestExpressedV1) for e in interest)
    assert {e.holder_id for e in interest} == {me.member_id}  # type: ignore[union-attr]
    assert interest[0].message == "Parlons-en."  # type: ignore[union-attr]
