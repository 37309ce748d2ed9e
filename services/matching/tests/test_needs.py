"""National needs over HTTP against the real database and broker: validation (422),
lifecycle (409 on an illegal move), events through the outbox, expiry, who may do what."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from diaspora_devstack.testing import read_topic, wait_until
from diaspora_events.cloudevents import decode, headers_from_kafka
from diaspora_events.kafka import ensure_topics
from diaspora_events.outbox import OutboxRelay
from diaspora_events.topics import ALL_TOPICS, MATCHING_NEEDS, with_prefix
from diaspora_identity.testing import LocalIssuer, analyst, citizen, coordinator
from matching.needs.service import expire_due
from matching.needs.tables import needs
from matching.resources import Matching
from matching.tables import outbox

pytestmark = pytest.mark.integration

SURGERY = "http://data.europa.eu/esco/skill/508f3b4c-799a-4742-b3ae-75f2ff11153d"


def need_body(**overrides: Any) -> dict[str, Any]:
    starts = date.today() + timedelta(days=60)
    body: dict[str, Any] = {
        "title": "Enseignant de chirurgie pour la faculté de médecine",
        "type": "teaching",
        "institution": "Université de Lomé",
        "institution_kind": "university",
        "description": "Cours de chirurgie générale et encadrement des internes.",
        "occupations": ["2212"],
        "skills": [{"esco_uri": SURGERY}, {"label": "pédagogie médicale"}],
        "min_isced_level": 7,
        "languages": ["fr"],
        "starts_on": starts.isoformat(),
        "ends_on": (starts + timedelta(days=30)).isoformat(),
        "duration_days": 30,
        "region": "Maritime",
        "prefecture": "Golfe",
        "work_mode": "on_site",
        "experts_wanted": 2,
        "funding_amount": "1500000",
        "funding_currency": "XOF",
        "funding_source": "Programme TOKTEN",
    }
    body.update(overrides)
    return body


async def relay_everything(service: Matching) -> int:
    """Run the service's outbox relay until every row is published; returns how many."""
    settings = service.settings
    await ensure_topics(
        settings.kafka_bootstrap, [with_prefix(t, settings.topic_prefix) for t in ALL_TOPICS]
    )
    relay = OutboxRelay(
        engine=service.engine,
        table=outbox,
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="matching-test-relay",
        topic_prefix=settings.topic_prefix,
    )

    async def unpublished() -> int:
        async with service.sessions() as session:
            found = await session.execute(
                select(outbox.c.id).where(outbox.c.published_at.is_(None))
            )
        return len(found.all())

    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await wait_until(lambda: _none_left(unpublished), timeout=30, message="the outbox")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
    async with service.sessions() as session:
        return len((await session.execute(select(outbox.c.id))).all())


async def _none_left(unpublished: Any) -> bool:
    return await unpublished() == 0


async def need_events(service: Matching, expect: int) -> list[tuple[str, Any]]:
    settings = service.settings
    records = await read_topic(
        settings.kafka_bootstrap, settings.topic_prefix + MATCHING_NEEDS.name, expect=expect
    )
    found = []
    for record in records:
        envelope = decode(headers_from_kafka(record.headers), record.value)
        found.append((envelope.type, envelope.to_event()))
    return found


@pytest.fixture
async def as_coordinator(
    matching_url: str, identity_provider: LocalIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=matching_url, timeout=20, headers=identity_provider.headers(coordinator())
    ) as client:
        yield client


@pytest.fixture
async def as_citizen(
    matching_url: str, identity_provider: LocalIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=matching_url, timeout=20, headers=identity_provider.headers(citizen())
    ) as client:
        yield client


async def test_a_need_goes_through_its_lifecycle_and_publishes_its_events(
    matching: Matching, as_coordinator: httpx.AsyncClient
) -> None:
    created = await as_coordinator.post("/needs", json=need_body())
    assert created.status_code == 201, created.text
    need = created.json()
    assert need["status"] == "draft"
    assert need["region"] == "TG-M"
    assert need["prefecture"] == "golfe"
    assert need["skills"][0]["label"] == "chirurgie"  # ESCO's label filled in
    assert created.headers["location"] == f"/needs/{need['id']}"

    # A change while a draft: no event (nobody saw it yet).
    changed = await as_coordinator.patch(f"/needs/{need['id']}", json={"experts_wanted": 3})
    assert changed.status_code == 200
    assert changed.json()["revision"] == 2

    steps = ["open", "matching", "proposals_sent", "matching", "proposals_sent", "filled"]
    for step in steps:
        moved = await as_coordinator.post(f"/needs/{need['id']}/status", json={"status": step})
        assert moved.status_code == 200, moved.text
        assert moved.json()["status"] == step
    # Closed: nothing moves any more, and details cannot change.
    illegal = await as_coordinator.post(f"/needs/{need['id']}/status", json={"status": "cancelled"})
    assert illegal.status_code == 409
    assert illegal.headers["content-type"].startswith("application/problem+json")
    assert illegal.json()["status"] == 409
    assert illegal.json()["allowed"] == []
    frozen = await as_coordinator.patch(f"/needs/{need['id']}", json={"title": "Autre titre"})
    assert frozen.status_code == 409

    # One event per step: posted when opened, updated on each move, closed when filled.
    assert await relay_everything(matching) == len(steps)
    found = await need_events(matching, expect=len(steps))
    types = [t for t, _ in found]
    assert types == [
        "matching.need.posted",
        *["matching.need.updated"] * (len(steps) - 2),
        "matching.need.closed",
    ]
    posted = found[0][1]
    assert posted.need.experts_wanted == 3
    assert posted.need.funding == "Programme TOKTEN: 1500000.00 XOF"
    assert found[-1][1].outcome == "filled"


async def test_illegal_moves_are_conflicts(as_coordinator: httpx.AsyncClient) -> None:
    need = (await as_coordinator.post("/needs", json=need_body())).json()
    skipping = await as_coordinator.post(
        f"/needs/{need['id']}/status", json={"status": "proposals_sent"}
    )
    assert skipping.status_code == 409
    assert skipping.json()["allowed"] == ["cancelled", "open"]
    published = await as_coordinator.post("/needs", json=need_body(publish=True))
    assert published.json()["status"] == "open"
    cancelled = await as_coordinator.post(
        f"/needs/{published.json()['id']}/status",
        json={"status": "cancelled", "reason": "budget withdrawn"},
    )
    assert cancelled.json()["close_reason"] == "budget withdrawn"
    stale = await as_coordinator.patch(
        f"/needs/{need['id']}", json={"title": "Nouveau titre"}, headers={"If-Match": '"7"'}
    )
    assert stale.status_code == 412
    # The refusal names the current version, so the client can read it again.
    current = (await as_coordinator.get(f"/needs/{need['id']}")).headers["etag"]
    assert stale.headers["etag"] == current
    assert stale.json()["current_version"] == int(current.strip('"'))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"occupations": ["9999"]}, "occupations"),
        ({"skills": [{"esco_uri": "http://data.europa.eu/esco/skill/nope"}]}, "skills"),
        ({"skills": [{"label": ""}]}, "skills"),
        ({"languages": ["zz"]}, "languages"),
        ({"region": "Bretagne"}, "region"),
        ({"prefecture": "Kozah"}, "prefecture"),  # Kara's, not Maritime's
        ({"ends_on": "2020-01-01"}, "ends_on"),
        ({"funding_currency": None}, "funding_currency"),
        ({"type": "tourism"}, "type"),
        ({"min_isced_level": 9}, "min_isced_level"),
        ({"experts_wanted": 0}, "experts_wanted"),
        ({"unknown_field": 1}, "unknown_field"),
        # Free text refuses control characters (CR, LF in single-line text, NUL, U+2028).
        ({"title": "Chirurgie\r\nBcc: x@evil.example"}, "title"),
        ({"institution": "CHU\u2028Lomé"}, "institution"),
        ({"description": "Cours\r\nsuite"}, "description"),
        ({"funding_source": "TOKTEN\x00"}, "funding_source"),
    ],
)
async def test_invalid_needs_are_refused_with_the_field(
    as_coordinator: httpx.AsyncClient, overrides: dict[str, Any], field: str
) -> None:
    answer = await as_coordinator.post("/needs", json=need_body(**overrides))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in answer.json()["errors"]]


async def test_idempotency_key_returns_the_first_need(as_coordinator: httpx.AsyncClient) -> None:
    key = {"Idempotency-Key": "need-2026-11-28-1"}
    first = await as_coordinator.post("/needs", json=need_body(), headers=key)
    again = await as_coordinator.post("/needs", json=need_body(), headers=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    other = await as_coordinator.post("/needs", json=need_body(title="Autre besoin"), headers=key)
    assert other.status_code == 409


async def test_needs_past_their_date_expire_once(
    matching: Matching, as_coordinator: httpx.AsyncClient
) -> None:
    open_need = (await as_coordinator.post("/needs", json=need_body(publish=True))).json()
    filled = (await as_coordinator.post("/needs", json=need_body(publish=True))).json()
    for step in ("matching", "proposals_sent", "filled"):
        await as_coordinator.post(f"/needs/{filled['id']}/status", json={"status": step})
    draft = (await as_coordinator.post("/needs", json=need_body())).json()
    later = date.today() + timedelta(days=61)  # the day after they start
    async with matching.sessions() as session, session.begin():
        expired = await expire_due(
            session, matching.outbox, today=later, on_close=matching.need_closed
        )
    assert [str(i) for i in expired] == [open_need["id"]]
    async with matching.sessions() as session, session.begin():
        assert (
            await expire_due(session, matching.outbox, today=later, on_close=matching.need_closed)
            == []
        )
        statuses = dict((await session.execute(select(needs.c.id, needs.c.status))).all())
    assert {str(k): v for k, v in statuses.items()} == {
        open_need["id"]: "expired",
        filled["id"]: "filled",
        draft["id"]: "draft",  # nobody published it: it does not expire
    }
    reopen = await as_coordinator.post(f"/needs/{open_need['id']}/status", json={"status": "open"})
    assert reopen.status_code == 409


async def test_who_may_do_what_with_needs(
    matching_url: str,
    identity_provider: LocalIssuer,
    as_coordinator: httpx.AsyncClient,
    as_citizen: httpx.AsyncClient,
) -> None:
    draft = (await as_coordinator.post("/needs", json=need_body())).json()
    published = (await as_coordinator.post("/needs", json=need_body(publish=True))).json()

    assert (await as_citizen.post("/needs", json=need_body())).status_code == 403
    assert (
        await as_citizen.post(f"/needs/{published['id']}/status", json={"status": "cancelled"})
    ).status_code == 403
    assert (
        await as_citizen.patch(f"/needs/{published['id']}", json={"title": "x" * 5})
    ).status_code == 403
    # Citizens read published needs, without who posted them; drafts do not exist for them.
    seen = await as_citizen.get("/needs")
    assert [n["id"] for n in seen.json()["items"]] == [published["id"]]
    assert seen.json()["items"][0]["created_by"] is None
    assert (await as_citizen.get(f"/needs/{draft['id']}")).status_code == 404
    assert (await as_citizen.get(f"/needs/{published['id']}")).status_code == 200
    staff = await as_coordinator.get("/needs")
    assert {n["id"] for n in staff.json()["items"]} == {draft["id"], published["id"]}

    async with httpx.AsyncClient(base_url=matching_url, timeout=20) as anonymous:
        assert (await anonymous.get("/needs")).status_code == 401
    async with httpx.AsyncClient(
        base_url=matching_url, timeout=20, headers=identity_provider.headers(analyst())
    ) as statistician:
        assert (await statistician.get("/needs")).status_code == 200
        assert (await statistician.post("/needs", json=need_body())).status_code == 403
