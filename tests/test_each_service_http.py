"""What every service's HTTP interface does alike, checked for each service found through
its ``diaspora.services`` entry point (a new service is covered by declaring it).

Fast tier: each app runs in this process (httpx's ASGI transport, its lifespan run as
uvicorn runs it), configured from the environment as its process is, on the fast tier's
PostgreSQL (its database migrated once per session); no Kafka, no port. What these
requests write (nothing but notifications' idempotent template seeding at start) stays
in the session's database.

Security headers and the body limit of ordinary requests are the gateway's
(tests/test_gateway.py, through nginx); uploads' own limits are the registry's
(services/registry/tests/test_import_api.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from diaspora_devstack.fastdb import FastDatabases
from diaspora_devstack.services import Service, discover
from diaspora_devstack.testing import app_url, asyncpg_url
from diaspora_service.problems import PROBLEM_JSON

ROOT = Path(__file__).resolve().parents[1]
SERVICES = discover()
METHODS = ("get", "put", "post", "patch", "delete")
ANY_ID = "01a2205f-7f73-75bf-bdda-60145c9948cd"


@pytest.fixture(scope="module", params=sorted(SERVICES))
def service(request: pytest.FixtureRequest) -> Service:
    return SERVICES[request.param]


@pytest.fixture(scope="module")
async def running(
    service: Service, fastdb: FastDatabases
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The service's app as its HTTP process builds it (settings from ``<NAME>_*``), started
    once for this module's tests of that service (building and starting an app, and its
    OpenAPI document, take a second or more)."""
    if not hasattr(service.module, "build_app"):
        pytest.skip(f"{service.name} has no HTTP interface")
    prefix = service.name.upper()
    database = await fastdb.url(service.name)
    with pytest.MonkeyPatch.context() as env:
        env.setenv(f"{prefix}_ENVIRONMENT", "test")
        env.setenv(f"{prefix}_JSON_LOGS", "false")
        # As the service's processes connect: its runtime role (docs/security.md).
        env.setenv(f"{prefix}_DATABASE_URL", asyncpg_url(app_url(database, service.name)))
        # Nothing here publishes or reads an event: the broker is never contacted.
        env.setenv(f"{prefix}_KAFKA_BOOTSTRAP", "127.0.0.1:9")
        env.setenv(f"{prefix}_EVENT_ENCRYPTION", "false")
        app: FastAPI = service.module.build_app()
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://service.test", timeout=30
            ) as client,
        ):
            yield app, client


@pytest.fixture
def app(running: tuple[FastAPI, httpx.AsyncClient]) -> FastAPI:
    return running[0]


@pytest.fixture
def client(running: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return running[1]


def is_problem(answer: httpx.Response, status: int | None = None) -> bool:
    body = answer.json()
    return (
        answer.headers["content-type"].startswith(PROBLEM_JSON)
        and body["status"] == answer.status_code
        and bool(body["title"])
        and (status is None or answer.status_code == status)
    )


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def concrete(path: str) -> str:
    """The path with an id in every parameter (a uuid parses wherever one is expected)."""
    return re.sub(r"\{[^}]+\}", ANY_ID, path)


def takes_json(operation: dict[str, Any]) -> bool:
    return "application/json" in operation.get("requestBody", {}).get("content", {})


async def test_the_process_is_live_and_ready_once_its_database_answers(
    client: httpx.AsyncClient,
) -> None:
    live = await client.get("/health/live")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    ready = await client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] is True
    assert all(body["checks"].values()), body


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/health/live")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert re.search(
        r'^http_request_duration_seconds_count\{method="GET",route="/health/live",status="200"\} '
        r"[1-9]",
        metrics.text,
        re.M,
    ), metrics.text[:2000]


async def test_an_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    answer = await client.get("/no/such/route")
    assert is_problem(answer, 404), answer.text


async def test_a_method_a_route_does_not_take_is_a_405_problem(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post("/health/live")
    assert is_problem(answer, 405), answer.text
    assert answer.headers["allow"] == "GET"


async def test_the_served_openapi_document_is_the_committed_one(
    client: httpx.AsyncClient, service: Service
) -> None:
    served = await client.get("/openapi.json")
    assert served.status_code == 200
    committed = ROOT / "docs" / "openapi" / f"{service.name}.json"
    assert committed.exists(), f"{committed} is missing: run `make docs` and commit it"
    assert served.json() == json.loads(committed.read_text()), "run `make docs` and commit"


async def test_malformed_json_is_a_4xx_problem_on_every_route_that_takes_json(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    taking_json = [(m, p) for m, p, op in operations(app.openapi()) if takes_json(op)]
    assert taking_json, "no route takes JSON?"
    for raw in (b"{not json", b'{"a": ', "\ud800".encode("utf-8", "surrogatepass")):
        for method, path in taking_json:
            answer = await client.request(
                method, concrete(path), content=raw, headers={"content-type": "application/json"}
            )
            assert 400 <= answer.status_code < 500, (method, path, raw, answer.text)
            assert is_problem(answer), (method, path, raw, answer.text)


async def test_routes_that_refuse_anonymous_callers_say_so_in_the_document(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """A route answering 401 without a token declares 401 and 403 (AUTH_RESPONSES) in
    its OpenAPI document, so that clients generated from it know them."""
    refused = []
    undeclared = []
    for method, path, operation in operations(app.openapi()):
        body = json.dumps({}) if method in ("put", "post", "patch") else None
        answer = await client.request(
            method,
            concrete(path),
            content=body,
            headers={"content-type": "application/json"} if body else {},
        )
        assert answer.status_code < 500, (method, path, answer.text)
        if answer.status_code == 401:
            assert is_problem(answer, 401), (method, path, answer.text)
            assert answer.headers["www-authenticate"].startswith("Bearer")
            refused.append((method, path))
            if not {"401", "403"} <= set(operation["responses"]):
                undeclared.append((method, path, sorted(operation["responses"])))
    assert refused, "every route answers anonymous callers?"
    assert undeclared == []


def test_routes_that_take_if_match_declare_the_412(app: FastAPI) -> None:
    """A route taking If-Match declares 412 (PRECONDITION_RESPONSES), and 401/403."""
    undeclared = []
    for method, path, operation in operations(app.openapi()):
        headers = {
            p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"
        }
        if "if-match" in headers and not {"412", "401", "403"} <= set(operation["responses"]):
            undeclared.append((method, path, sorted(operation["responses"])))
    assert undeclared == []
