"""A case worker's journey through the gateway (issue 18, "What it must show": receive
the case, refer it, see the partner acknowledge and close the referral): real nginx
rendered from deploy/local/nginx in front of the returnees API, relay and worker (and
the registry's API, the key service that seals the referral's personal fields), real
PostgreSQL and Kafka.

Consular issues a laissez-passer (``consular.laissez-passer.issued`` on
``consular.applications``); the returnees worker opens a reception case for it. The
cell's case worker finds it among the unassigned cases, takes it, records the intake on
arrival (where the returnee settles) and the needs. The ministry records a partner
organisation; the case worker finds who offers housing in the returnee's prefecture and
refers the case's need there (the returnee and the prefecture come from the case); the
partner's case worker finds it in the organisation's queue, acknowledges it and closes it
as done; the case worker sees the referral done on the case, and so does the returnee on
theirs; another partner's case worker does not find it. Every step is published on
``returnees.referrals`` by the relay, the note sealed.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from diaspora_devstack import gateway as gw
from diaspora_devstack.config import StackConfig
from diaspora_devstack.testing import (
    ServiceProcess,
    answers,
    api_command,
    free_port,
    read_topic,
    service_env,
    wait_until,
)
from diaspora_events.cloudevents import encode, headers_to_kafka
from diaspora_events.contracts import LaissezPasserIssuedV1
from diaspora_events.kafka import ensure_topics
from diaspora_events.topics import CONSULAR_APPLICATIONS, RETURNEES_REFERRALS
from diaspora_identity.testing import (
    LocalIssuer,
    case_worker,
    caseworker,
    citizen,
    coordinator,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

NOTE = "Arrives on the 12th with two children; needs a room near Lomé for a month."


@dataclass
class Edge:
    gateway_url: str
    kafka_bootstrap: str
    topic_prefix: str


@pytest.fixture
async def edge(
    registry_database: str,
    returnees_database: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    identity_provider: LocalIssuer,
    test_logs: Path,
    tmp_path: Path,
) -> AsyncIterator[Edge]:
    registry_port = free_port()
    returnees_port = free_port()
    registry_env = service_env(
        "REGISTRY",
        database_url=registry_database,
        kafka=kafka_bootstrap,
        topic_prefix=topic_prefix,
        issuer=identity_provider,
        extra={"REGISTRY_EVENT_KEK_FILE": str(tmp_path / "kek.key")},
    )
    returnees_env = service_env(
        "RETURNEES",
        database_url=returnees_database,
        kafka=kafka_bootstrap,
        topic_prefix=topic_prefix,
        issuer=identity_provider,
        event_keys_from=f"http://127.0.0.1:{registry_port}",
    )
    processes = [
        ServiceProcess(
            "registry-api",
            api_command("registry", registry_port),
            registry_env,
            test_logs / "registry-api.log",
        ).start(),
        ServiceProcess(
            "returnees-api",
            api_command("returnees", returnees_port),
            returnees_env,
            test_logs / "returnees-api.log",
        ).start(),
        ServiceProcess(
            "returnees-relay", ["returnees-relay"], returnees_env, test_logs / "returnees-relay.log"
        ).start(),
        # Consumes consular's laissez-passer: the reception case.
        ServiceProcess(
            "returnees-worker",
            ["returnees-worker"],
            returnees_env,
            test_logs / "returnees-worker.log",
        ).start(),
    ]
    cfg = StackConfig.from_env()
    gateway_port = free_port()
    settings = gw.GatewaySettings(
        listen=f"127.0.0.1:{gateway_port}",
        upstreams={
            "registry": f"127.0.0.1:{registry_port}",
            "notifications": f"127.0.0.1:{free_port()}",
            "matching": f"127.0.0.1:{free_port()}",
            "consular": f"127.0.0.1:{free_port()}",
            "returnees": f"127.0.0.1:{returnees_port}",
        },
        name=f"gateway-test-{gateway_port}",
    )
    conf = gw.prepare(cfg, settings)
    processes.append(
        ServiceProcess(
            settings.name, gw.command(cfg, settings, conf), {}, test_logs / f"{settings.name}.log"
        ).start()
    )
    try:
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        for url in (f"http://127.0.0.1:{registry_port}", f"http://127.0.0.1:{returnees_port}"):
            # Generous: Python processes importing at once on two busy cores.
            await wait_until(
                lambda url=url: answers(f"{url}/health/ready"), timeout=240, message=url
            )
        await wait_until(lambda: answers(f"{gateway_url}/health"), timeout=30, message="nginx")
        yield Edge(gateway_url, kafka_bootstrap, topic_prefix)
    finally:
        for process in reversed(processes):
            process.stop()
        shutil.rmtree(gw.prefix_dir(cfg, settings), ignore_errors=True)


def ok(answer: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def issue_laissez_passer(edge: Edge, issued: LaissezPasserIssuedV1) -> None:
    """Consular's relay publishing the event (CloudEvents, keyed by the application)."""
    topic = edge.topic_prefix + CONSULAR_APPLICATIONS.name
    await ensure_topics(edge.kafka_bootstrap, [replace(CONSULAR_APPLICATIONS, name=topic)])
    producer = AIOKafkaProducer(bootstrap_servers=edge.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        _id, headers, value = encode(issued, source="/tg/diaspora/consular")
        await producer.send_and_wait(
            topic,
            value=value,
            key=issued.aggregate_id().encode(),
            headers=headers_to_kafka(headers),
        )
    finally:
        await producer.stop()


async def test_a_case_worker_receives_the_case_refers_it_and_sees_the_referral_closed(
    edge: Edge, identity_provider: LocalIssuer
) -> None:
    issuer = identity_provider
    ministry = issuer.headers(coordinator())
    cell = issuer.headers(case_worker("cell-worker-1"))
    member_id = uuid.uuid4()
    returnee = issuer.headers(citizen("kodjo", member_id=member_id))
    application_id = uuid.uuid4()
    arrival = datetime.now(UTC).date() + timedelta(days=2)

    # Consular issues the laissez-passer; the returnees worker opens the case.
    await issue_laissez_passer(
        edge,
        LaissezPasserIssuedV1(
            application_id=application_id,
            applicant_id=member_id,
            embassy_id="ly-tripoli",
            issued_at=datetime.now(UTC),
            travel_date=arrival,
            expected_return_date=arrival,
        ),
    )

    async with httpx.AsyncClient(base_url=edge.gateway_url + "/api/returnees", timeout=30) as api:
        received: dict[str, Any] = {}

        async def the_case_arrived() -> bool:
            answer = await api.get("/cases", params={"assigned": "none"}, headers=cell)
            for case in ok(answer)["items"]:
                if case["application_id"] == str(application_id):
                    received.update(case)
                    return True
            return False

        await wait_until(the_case_arrived, timeout=90, message="the laissez-passer's case")
        assert (received["origin"], received["status"]) == ("laissez_passer", "declared")
        assert received["member_id"] == str(member_id)
        assert received["expected_arrival"] == arrival.isoformat()
        case_id = received["id"]
        case_path = f"/cases/{case_id}"

        # The case worker takes it, records the arrival (where the returnee settles) and
        # the needs.
        taken = ok(
            await api.put(
                f"{case_path}/assignee", json={"case_worker": "cell-worker-1"}, headers=cell
            )
        )
        assert taken["assigned_to"] == "cell-worker-1"
        opened = ok(
            await api.post(
                f"{case_path}/intake",
                json={
                    "return_date": arrival.isoformat(),
                    "country_from": "LY",
                    "reason": "expelled",
                    "prefecture": "Golfe",
                },
                headers=cell,
            )
        )
        assert (opened["status"], opened["prefecture"], opened["region"]) == (
            "open",
            "golfe",
            "TG-M",
        )
        assessed = ok(
            await api.post(
                f"{case_path}/needs",
                json={
                    "needs": [
                        {"area": "housing", "priority": "high"},
                        {"area": "employment", "priority": "medium"},
                    ]
                },
                headers=cell,
            )
        )
        assert assessed["status"] == "assessed"
        assert assessed["referrals"] == []

        # The ministry records the partners (in Togo's regions and prefectures).
        areas = ok(await api.get("/partners/areas", headers=cell))
        assert [r["code"] for r in areas["regions"]] == ["TG-C", "TG-K", "TG-M", "TG-P", "TG-S"]
        partner = ok(
            await api.post(
                "/partners",
                json={
                    "partner_org": "caritas-lome",
                    "name": "Caritas Lomé",
                    "contact": {"name": "Accueil", "phone": "+22890000000"},
                    "services": ["reception", "housing"],
                    "regions": [],
                    "prefectures": ["golfe", "agoe-nyive"],
                },
                headers=ministry,
            ),
            201,
        )
        other = ok(
            await api.post(
                "/partners",
                json={
                    "partner_org": "anpe-kara",
                    "name": "ANPE Kara",
                    "contact": {"name": "Desk"},
                    "services": ["employment"],
                    "regions": ["TG-K"],
                },
                headers=ministry,
            ),
            201,
        )
        caritas = issuer.headers(caseworker("caritas-lome", subject="caritas-worker-1"))
        anpe = issuer.headers(caseworker(other["partner_org"]))

        # The case worker finds who offers housing in Golfe, and refers the need there:
        # the returnee and the prefecture are the case's.
        found = ok(
            await api.get(
                "/partners", params={"offers": "housing", "prefecture": "golfe"}, headers=cell
            )
        )
        assert [p["partner_org"] for p in found["items"]] == ["caritas-lome"]
        elsewhere = await api.post(
            "/referrals",
            json={"case_id": case_id, "partner_id": other["id"], "need": "employment"},
            headers=cell,
        )
        assert elsewhere.status_code == 422, elsewhere.text
        assert elsewhere.headers["content-type"].startswith("application/problem+json")
        assert "does not cover the prefecture golfe" in elsewhere.json()["detail"]
        referred = ok(
            await api.post(
                "/referrals",
                json={
                    "case_id": case_id,
                    "partner_id": partner["id"],
                    "need": "housing",
                    "priority": "high",
                    "language": "fr",
                    "note": NOTE,
                },
                headers=cell,
            ),
            201,
        )
        referral_id = referred["id"]
        assert (referred["status"], referred["member_id"], referred["prefecture"]) == (
            "referred",
            str(member_id),
            "golfe",
        )

        # The partner's case worker: the organisation's queue, acknowledge, close.
        queue = ok(await api.get("/referrals", headers=caritas))
        assert [(r["id"], r["case_id"], r["note"]) for r in queue["items"]] == [
            (referral_id, case_id, NOTE)
        ]
        acknowledged = await api.post(
            f"/referrals/{referral_id}/transitions",
            json={"action": "acknowledge"},
            headers={**caritas, "if-match": f'"{referred["version"]}"'},
        )
        assert ok(acknowledged)["status"] == "acknowledged"
        on_case = ok(await api.get(case_path, headers=cell))
        assert [(r["id"], r["status"]) for r in on_case["referrals"]] == [
            (referral_id, "acknowledged")
        ]
        done = await api.post(
            f"/referrals/{referral_id}/transitions",
            json={"action": "complete", "reason": "Room found in Bè; moved in on the 14th."},
            headers={**caritas, "if-match": acknowledged.headers["etag"]},
        )
        assert ok(done)["status"] == "done"

        # The case worker sees the referral done on the case; the returnee on theirs.
        closed = ok(await api.get(case_path, headers=cell))
        assert [
            (r["id"], r["need"], r["partner_name"], r["status"]) for r in closed["referrals"]
        ] == [(referral_id, "housing", "Caritas Lomé", "done")]
        assert closed["referrals"][0]["closed_at"] is not None
        theirs = ok(await api.get(case_path, headers=returnee))
        assert [(r["id"], r["status"]) for r in theirs["referrals"]] == [(referral_id, "done")]
        mine = ok(await api.get(f"/referrals/{referral_id}", headers=returnee))
        assert (mine["status"], mine["need"], mine["note"]) == ("done", "housing", None)
        # Another partner's case worker does not find it.
        hidden = await api.get(f"/referrals/{referral_id}", headers=anpe)
        assert hidden.status_code == 404, hidden.text
        assert ok(await api.get("/referrals", headers=anpe))["total"] == 0

    # The relay published every step on returnees.referrals, keyed by the referral; the
    # note and the partner's report travel sealed with the returnee's key.
    records = await read_topic(
        edge.kafka_bootstrap, edge.topic_prefix + RETURNEES_REFERRALS.name, expect=3, timeout=60
    )
    events = [
        ({k: v.decode() for k, v in r.headers}["ce_type"], json.loads(r.value), r.key.decode())
        for r in sorted(records, key=lambda r: (r.partition, r.offset))
    ]
    assert [kind for kind, _, _ in events] == [
        "returnees.referral.created",
        "returnees.referral.status-changed",
        "returnees.referral.status-changed",
    ]
    assert {key for _, _, key in events} == {referral_id}
    assert all(data["case_id"] == case_id for _, data, _ in events)
    assert all("Lomé for a month" not in json.dumps(data) for _, data, _ in events)
    assert all("Room found" not in json.dumps(data) for _, data, _ in events)
    assert "_sealed" in events[0][1]
