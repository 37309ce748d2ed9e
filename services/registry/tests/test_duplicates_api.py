"""Duplicates review queue against the real database and broker: flagged on registration,
merge (events on the topics, absorbed record gone, survivor merged), dismiss, scope."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from diaspora_devstack.testing import asyncpg_url, read_topic, serve_app
from diaspora_events.kafka import ensure_topics
from diaspora_events.outbox import OutboxRelay
from diaspora_events.topics import ALL_TOPICS, with_prefix
from diaspora_identity.testing import LocalIssuer, admin, citizen, coordinator, officer
from registry.bootstrap import bootstrap
from registry.duplicates.tables import duplicate_cases, member_match_keys
from registry.entrypoints.http import build_app
from registry.members.tables import member_changes, members
from registry.resources import Registry
from registry.settings import RegistrySettings
from registry.tables import outbox

pytestmark = pytest.mark.integration


def registry_settings(
    database: str, kafka_bootstrap: str, topic_prefix: str, issuer: LocalIssuer, **more: Any
) -> RegistrySettings:
    return RegistrySettings(
        database_url=asyncpg_url(database),
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        environment="test",
        json_logs=False,
        oidc_issuer=issuer.issuer,
        oidc_jwks_min_refresh_seconds=0,
        **more,
    )


@pytest.fixture
async def live(
    registry_database: str, kafka_bootstrap: str, topic_prefix: str, identity_provider: LocalIssuer
) -> AsyncIterator[tuple[Registry, str]]:
    """The registry API and its outbox relay (to the test's own topics)."""
    service = bootstrap(
        registry_settings(registry_database, kafka_bootstrap, topic_prefix, identity_provider)
    )
    owned = [with_prefix(t, topic_prefix) for t in ALL_TOPICS if t.owner == "registry"]
    await ensure_topics(kafka_bootstrap, owned)
    relay = OutboxRelay(
        engine=service.engine,
        table=outbox,
        bootstrap_servers=kafka_bootstrap,
        client_id="registry-relay-test",
        topic_prefix=topic_prefix,
        poll_interval=0.2,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    async with serve_app(build_app(service)) as base_url:
        yield service, base_url
    stop.set()
    await asyncio.wait_for(task, timeout=30)
    await service.close()


def person(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "given_name": "Kɔkú",
        "family_name": "Agbéko-Mensah",
        "date_of_birth": "1988-03-14",
        "country_of_residence": "FR",
        "email": "koku.agbeko@example.org",
        "phone": "+33612345601",
        "consent_recorded": {"method": "signed_form"},
    }
    body.update(overrides)
    return body


async def flagged_pair(
    http: httpx.AsyncClient, first_fields: dict[str, Any] | None = None, **second: Any
) -> tuple[str, str, dict[str, Any]]:
    """Two registrations of one person written differently; the open case between them."""
    first_body = person(languages=["fr"], city="Lyon") | (first_fields or {})
    if first_body["country_of_residence"] != "FR":
        first_body.pop("city")
    first = await http.post("/members", json=first_body)
    assert first.status_code == 201, first.text
    again = await http.post(
        "/members",
        json=person(
            given_name="Koku",
            family_name="AGBEKO MENSAH",
            email="k.agbeko@example.com",
            phone="+33612345602",
            languages=["ee", "fr"],
            arrival_year=2010,
            **second,
        ),
    )
    assert again.status_code == 201, again.text  # never blocked
    cases = (await http.get("/duplicates")).json()["items"]
    assert len(cases) == 1
    return first.json()["id"], again.json()["id"], cases[0]


async def test_a_registration_written_differently_is_flagged_with_both_records_side_by_side(
    live: tuple[Registry, str],
    identity_provider: LocalIssuer,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    registry, url = live
    paris = officer("fr-paris")
    async with httpx.AsyncClient(
        base_url=url, headers=identity_provider.headers(paris), timeout=60
    ) as http:
        first, second, case = await flagged_pair(http)
        assert case["member"]["id"] == second
        assert case["match"]["id"] == first
        assert case["embassy_id"] == "fr-paris"
        assert case["source"] == "registration"
        assert case["reasons"][:2] == ["name~1.00", "date_of_birth"]
        assert case["score"] == 0.8
        assert case["match"]["email"] == "koku.agbeko@example.org"
        one = await http.get(f"/duplicates/{case['id']}")
        assert one.status_code == 200
        assert one.json()["member"]["phone"] == "+33612345602"
        # Each record shown is an audited read.
        log = await http.get(f"/members/{first}/access-log")
    async with registry.sessions() as session:
        reads = (
            await session.execute(
                text(
                    "SELECT count(*) FROM audit_log WHERE resource = 'duplicate_case' "
                    "AND record_id = :id"
                ),
                {"id": first},
            )
        ).scalar_one()
    assert reads == 2  # the list and the read
    assert log.status_code in (200, 403, 404)
    records = await read_topic(
        kafka_bootstrap, f"{topic_prefix}registry.duplicates", expect=1, timeout=30
    )
    assert len(records) == 1
    flagged = json.loads(records[0].value)
    assert flagged["case_id"] == case["id"]
    assert flagged["member_ids"] == [second, first]
    assert dict(records[0].headers)["ce_type"] == b"registry.duplicates.flagged"


async def test_merge_keeps_the_survivor_fills_its_blanks_and_deletes_the_other(
    live: tuple[Registry, str],
    identity_provider: LocalIssuer,
    kafka_bootstrap: str,
    topic_prefix: str,
) -> None:
    registry, url = live
    async with httpx.AsyncClient(
        base_url=url, headers=identity_provider.headers(officer("fr-paris")), timeout=60
    ) as http:
        first, second, case = await flagged_pair(http)
        wrong = await http.post(f"/duplicates/{case['id']}/merge", json={"survivor_id": case["id"]})
        assert wrong.status_code == 422
        merged = await http.post(f"/duplicates/{case['id']}/merge", json={"survivor_id": first})
        assert merged.status_code == 200, merged.text
        result = merged.json()
        assert result["status"] == "merged"
        assert result["absorbed_id"] == second
        assert {"languages", "arrival_year"} <= set(result["changed_fields"])
        survivor = (await http.get(f"/members/{first}")).json()
        assert survivor["email"] == "koku.agbeko@example.org"  # the survivor's values win
        assert survivor["phone"] == "+33612345601"
        assert survivor["languages"] == ["fr", "ee"]  # lists unioned
        assert survivor["arrival_year"] == 2010  # blanks filled
        assert survivor["city"]["name"] == "Lyon"
        assert (await http.get(f"/members/{second}")).status_code in (404, 410)
        again = await http.post(f"/duplicates/{case['id']}/merge", json={"survivor_id": first})
        assert again.status_code == 409
        assert (await http.get("/duplicates")).json()["items"] == []
        closed = (await http.get("/duplicates", params={"status": "merged"})).json()["items"]
        assert [c["id"] for c in closed] == [case["id"]]

    async with registry.sessions() as session:
        for table, column in (
            (members, members.c.id),
            (member_match_keys, member_match_keys.c.member_id),
            (member_changes, member_changes.c.member_id),
        ):
            left = await session.execute(
                select(func.count()).select_from(table).where(column == second)
            )
            assert left.scalar_one() == 0, table.name
        history = (
            (
                await session.execute(
                    select(member_changes.c.action).where(member_changes.c.member_id == first)
                )
            )
            .scalars()
            .all()
        )
    assert history == ["registered", "merged"]

    members_topic = await read_topic(
        kafka_bootstrap, f"{topic_prefix}registry.members", expect=4, timeout=30
    )
    types = [(dict(r.headers)["ce_type"].decode(), r.key.decode()) for r in members_topic]
    assert ("registry.member.merged", second) in types
    assert ("registry.member.updated", first) in types
    updated = next(
        json.loads(r.value)
        for r in members_topic
        if dict(r.headers)["ce_type"] == b"registry.member.updated"
    )
    assert updated["profile"]["languages"] == ["fr", "ee"]
    assert updated["profile"]["arrival_year"] == 2010
    merged_event = next(
        json.loads(r.value)
        for r in members_topic
        if dict(r.headers)["ce_type"] == b"registry.member.merged"
    )
    assert merged_event["survivor_id"] == first
    assert merged_event["case_id"] == case["id"]
    duplicates_topic = await read_topic(
        kafka_bootstrap, f"{topic_prefix}registry.duplicates", expect=2, timeout=30
    )
    resolved = [json.loads(r.value) for r in duplicates_topic][-1]
    assert resolved["outcome"] == "merged"
    assert resolved["survivor_id"] == first


async def test_dismiss_closes_the_case_and_keeps_both_records(
    live: tuple[Registry, str], identity_provider: LocalIssuer
) -> None:
    registry, url = live
    async with httpx.AsyncClient(
        base_url=url, headers=identity_provider.headers(officer("fr-paris")), timeout=60
    ) as http:
        first, second, case = await flagged_pair(http)
        dismissed = await http.post(f"/duplicates/{case['id']}/dismiss")
        assert dismissed.status_code == 200
        assert dismissed.json()["status"] == "dismissed"
        assert (await http.post(f"/duplicates/{case['id']}/dismiss")).status_code == 409
        assert (await http.get(f"/members/{first}")).status_code == 200
        assert (await http.get(f"/members/{second}")).status_code == 200
        assert (await http.get("/duplicates")).json()["items"] == []
    async with registry.sessions() as session:
        status = (
            await session.execute(
                select(duplicate_cases.c.status).where(duplicate_cases.c.id == case["id"])
            )
        ).scalar_one()
    assert status == "dismissed"


async def test_an_officer_of_another_embassy_sees_no_case(
    live: tuple[Registry, str], identity_provider: LocalIssuer
) -> None:
    _registry, url = live
    async with httpx.AsyncClient(
        base_url=url, headers=identity_provider.headers(officer("fr-paris")), timeout=60
    ) as paris:
        _first, _second, case = await flagged_pair(paris)
    async with httpx.AsyncClient(
        base_url=url, headers=identity_provider.headers(officer("de-berlin")), timeout=60
    ) as berlin:
        assert (await berlin.get("/duplicates")).json()["items"] == []
        assert (await berlin.get(f"/duplicates/{case['id']}")).status_code == 404
        merge = await berlin.post(
            f"/duplicates/{case['id']}/merge", json={"survivor_id": case["match"]["id"]}
        )
        assert merge.status_code == 404
        assert (await berlin.post(f"/duplicates/{case['id']}/dismiss")).status_code == 404
    async with httpx.AsyncClient(
        base_url=url, headers=identity_provider.headers(citizen("someone"))
    ) as person_:
        assert (await person_.get("/duplicates")).status_code == 403


async def test_a_case_across_two_embassies_goes_to_the_ministry_queue(
    live: tuple[Registry, str], identity_provider: LocalIssuer
) -> None:
    """A case is visible, readable, mergeable and dismissable only by someone whose scope
    covers both records: the newer record lives in Paris's jurisdiction, the other in
    Brussels's, so no embassy officer (not even one working for both) sees it; ministry
    coordinators and admins find it in the ministry queue."""
    _registry, url = live
    async with httpx.AsyncClient(
        base_url=url, headers=identity_provider.headers(admin()), timeout=60
    ) as staff:
        first, second, case = await flagged_pair(staff, first_fields={"country_of_residence": "BE"})
    assert case["member"]["id"] == second  # the newer record, in France
    assert case["match"]["embassy_id"] == "be-brussels"
    assert case["embassy_id"] == "fr-paris"
    assert case["queue"] == "ministry"
    for persona in (
        officer("fr-paris"),
        officer("be-brussels"),
        officer("fr-paris", "be-brussels"),
    ):
        async with httpx.AsyncClient(
            base_url=url, headers=identity_provider.headers(persona), timeout=60
        ) as embassy:
            assert (await embassy.get("/duplicates")).json()["items"] == []
            assert (await embassy.get(f"/duplicates/{case['id']}")).status_code == 404
            merge = await embassy.post(
                f"/duplicates/{case['id']}/merge", json={"survivor_id": second}
            )
            assert merge.status_code == 404
            assert (await embassy.post(f"/duplicates/{case['id']}/dismiss")).status_code == 404
            # Their embassy's own records stay theirs to read, one side each.
            assert (await embassy.get(f"/members/{first}")).status_code in (200, 404)
    async with httpx.AsyncClient(
        base_url=url, headers=identity_provider.headers(coordinator()), timeout=60
    ) as ministry:
        queue = (await ministry.get("/duplicates", params={"queue": "ministry"})).json()["items"]
        assert [c["id"] for c in queue] == [case["id"]]
        assert (await ministry.get("/duplicates", params={"queue": "embassy"})).json()[
            "items"
        ] == []
        read = await ministry.get(f"/duplicates/{case['id']}")
        assert read.status_code == 200
        assert read.json()["queue"] == "ministry"
        merged = await ministry.post(f"/duplicates/{case['id']}/merge", json={"survivor_id": first})
        assert merged.status_code == 200, merged.text
        assert merged.json()["absorbed_id"] == second


async def test_different_people_sharing_a_phone_are_not_flagged(
    live: tuple[Registry, str], identity_provider: LocalIssuer
) -> None:
    _registry, url = live
    async with httpx.AsyncClient(
        base_url=url, headers=identity_provider.headers(officer("fr-paris")), timeout=60
    ) as http:
        assert (await http.post("/members", json=person())).status_code == 201
        sister = person(
            given_name="Afi", date_of_birth="1992-07-01", email="afi@example.org"
        )  # same family name and phone: a family
        assert (await http.post("/members", json=sister)).status_code == 201
        assert (await http.get("/duplicates")).json()["items"] == []


async def test_a_changed_email_is_what_later_registrations_are_compared_with(
    live: tuple[Registry, str], identity_provider: LocalIssuer
) -> None:
    registry, url = live
    async with httpx.AsyncClient(
        base_url=url, headers=identity_provider.headers(officer("fr-paris")), timeout=60
    ) as http:
        first = await http.post("/members", json=person())
        assert first.status_code == 201, first.text
        member_id = first.json()["id"]
        changed = await http.patch(
            f"/members/{member_id}",
            json={"email": "Koku.Mensah@Example.org", "phone": "+33612345699"},
            headers={"If-Match": first.headers["etag"]},
        )
        assert changed.status_code == 200, changed.text
        # Born another day, another phone: only the name and the new email link them.
        again = person(
            date_of_birth="1979-11-02", email="koku.mensah@example.org", phone="+33612345610"
        )
        assert (await http.post("/members", json=again)).status_code == 201
        (case,) = (await http.get("/duplicates")).json()["items"]
        assert case["match"]["id"] == member_id
        assert "email" in case["reasons"]
    async with registry.sessions() as session:
        keys = (
            await session.execute(
                select(member_match_keys.c.email, member_match_keys.c.phone).where(
                    member_match_keys.c.member_id == member_id
                )
            )
        ).one()
    assert tuple(keys) == ("koku.mensah@example.org", "+33612345699")


@pytest.mark.parametrize(("threshold", "flagged"), [(0.8, 2), (0.9, 0)])
async def test_the_configured_threshold_decides_what_is_flagged(
    registry_database: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    identity_provider: LocalIssuer,
    threshold: float,
    flagged: int,
) -> None:
    """REGISTRY_DUPLICATE_THRESHOLD reaches both registration paths (a self-registration's
    one statement and an assisted registration's transaction): pairs scoring 0.8 are
    flagged at 0.8 and not at 0.9."""
    service = bootstrap(
        registry_settings(
            registry_database,
            kafka_bootstrap,
            topic_prefix,
            identity_provider,
            duplicate_threshold=threshold,
        )
    )
    written_differently = {"given_name": "Koku", "family_name": "AGBEKO MENSAH"}
    try:
        async with serve_app(build_app(service)) as url:
            async with httpx.AsyncClient(
                base_url=url, headers=identity_provider.headers(officer("fr-paris")), timeout=60
            ) as staff:
                assert (await staff.post("/members", json=person())).status_code == 201
            self_registration = person(
                **written_differently, email="k.agbeko@example.com", phone="+33612345602"
            )
            self_registration.pop("consent_recorded")
            async with httpx.AsyncClient(
                base_url=url, headers=identity_provider.headers(citizen()), timeout=60
            ) as person_self:
                created = await person_self.post("/members", json=self_registration)
                assert created.status_code == 201, created.text
            async with httpx.AsyncClient(
                base_url=url, headers=identity_provider.headers(officer("fr-paris")), timeout=60
            ) as staff:
                assisted = person(
                    **written_differently, email="koku.am@example.net", phone="+33612345603"
                )
                assert (await staff.post("/members", json=assisted)).status_code == 201
        async with service.sessions() as session:
            keys = await session.scalar(select(func.count()).select_from(member_match_keys))
            cases = await session.scalar(
                select(func.count(func.distinct(duplicate_cases.c.member_id)))
            )
        assert keys == 3  # detection ran for every registration
        assert cases == flagged
    finally:
        await service.close()
