"""The gateway (real nginx from deploy/local/nginx) and token checks against the real services.

Routing, rate limits (429), the body limit (413), security headers, request ids,
an access log without tokens, query strings or ids; the services still refuse a
request that bypasses the gateway without a token; and every kind of bad token
gets 401 with a clear problem-details body, through the gateway, from both services.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from diaspora_devstack import stack
from diaspora_devstack.testing import (
    ServiceProcess,
    asyncpg_url,
    free_port,
    service_env,
    wait_until,
)
from diaspora_identity.testing import LocalIssuer, SigningKey, admin, citizen, officer
from tests.conftest import GatewayFactory, LocalPlatform, shared_platform

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
async def platform(
    infra: stack.Endpoints, migrated_templates: dict[str, str]
) -> AsyncIterator[LocalPlatform]:
    """One platform for the module: each test starts its own gateway in front of it."""
    async with shared_platform(infra, migrated_templates, "test_gateway") as running:
        yield running


PROBLEM = "application/problem+json"
MEMBER = {
    "given_name": "Yawa",
    "family_name": "Amegah",
    "date_of_birth": "1979-11-02",
    "country_of_residence": "BE",
    "email": "yawa.amegah@example.be",
    "phone": "+32470123456",
    # Assisted registrations attest how the person consented (ignored for a citizen's own).
    "consent_recorded": {"method": "signed_form"},
}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["title"]
    return problem


async def test_routing_headers_request_ids_and_the_access_log(
    platform: LocalPlatform, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway()
    brussels = platform.issuer.headers(officer("be-brussels"))
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15) as client:
        registry = await client.get("/api/registry/health/live")
        notifications = await client.get("/api/notifications/health/live")
        assert registry.status_code == notifications.status_code == 200
        assert_problem(await client.get("/elsewhere"), 404)

        created = await client.post("/api/registry/members", json=MEMBER, headers=brussels)
        assert created.status_code == 201, created.text
        member_id = created.json()["id"]
        headers = created.headers
        assert headers["location"] == f"/api/registry/members/{member_id}"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in headers  # plain http: no HSTS
        assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
        assert len(headers.get_list("x-request-id")) == 1

        # A caller's request id is passed through to the service (and into its audit trail).
        read = await client.get(
            f"/api/registry/members/{member_id}",
            headers={**brussels, "X-Request-ID": "trace-me-123"},
        )
        assert read.status_code == 200
        assert read.headers["x-request-id"] == "trace-me-123"
        odd = await client.get("/api/registry/health/live", headers={"X-Request-ID": 'a b"c'})
        assert re.fullmatch(r"[0-9a-f]{32}", odd.headers["x-request-id"])

        secret = "Amegah"
        await client.get("/api/registry/members/search", params={"q": secret}, headers=brussels)

    engine = create_async_engine(asyncpg_url(platform.registry_database))
    async with engine.connect() as conn:
        audited = (
            await conn.execute(
                text("SELECT client_address FROM audit_log WHERE request_id = 'trace-me-123'")
            )
        ).all()
    await engine.dispose()
    assert [row.client_address for row in audited] == ["127.0.0.1"]

    # nginx logs a request after answering it: wait for the lines of the last requests
    # (the search carries the secret), then check what the whole log holds.
    def logged(path: str) -> bool:
        return f'"path":"{path}"' in gateway.access_log.read_text()

    await wait_until(
        lambda: logged("/api/registry/members/search") and logged("/api/registry/members/{id}"),
        timeout=10,
        message="the access log lines of the search and the read",
    )
    log = gateway.access_log.read_text()
    lines = [json.loads(line) for line in log.splitlines()]
    assert any(line["request_id"] == "trace-me-123" for line in lines)
    assert "/api/registry/members/{id}" in {line["path"] for line in lines}
    token = brussels["Authorization"].split()[1]
    for forbidden in (secret, "q=", token, "Bearer", member_id, "127.0.0.1"):
        assert forbidden not in log, forbidden


async def test_rate_limits_per_token_and_per_address(
    platform: LocalPlatform, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway(
        rate_per_address="2r/s", burst_per_address=12, rate_per_token="1r/m", burst_per_token=3
    )
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15) as client:
        busy = platform.issuer.headers(admin())
        statuses = [
            (await client.get("/api/registry/members", headers=busy)).status_code for _ in range(6)
        ]
        assert statuses == [200, 200, 200, 200, 429, 429]
        limited = await client.get("/api/registry/members", headers=busy)
        problem = assert_problem(limited, 429)
        assert "Slow down" in problem["detail"]
        assert limited.headers["retry-after"] == "1"
        assert limited.headers["x-content-type-options"] == "nosniff"
        # Another token from the same address still passes...
        other = await client.get("/api/registry/members", headers=platform.issuer.headers(admin()))
        assert other.status_code == 200
        # ...until the address itself is over its limit (with or without tokens).
        results = [(await client.get("/api/registry/health/live")).status_code for _ in range(20)]
        assert 429 in results
        assert results.index(429) <= 12


async def test_request_bodies_over_the_limit_are_413(
    platform: LocalPlatform, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway(body_limit="16k")
    headers = platform.issuer.headers(citizen())
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15) as client:
        big = {**MEMBER, "given_name": "x" * 40_000}
        problem = assert_problem(
            await client.post("/api/registry/members", json=big, headers=headers), 413
        )
        assert "16k" in problem["detail"]
        small = await client.post("/api/registry/members", json=MEMBER, headers=headers)
        assert small.status_code == 201
        # Embassy lists are bigger: the import path has its own limit (the service decides).
        upload = {"file": ("list.csv", b"nom;prenom\n" + b"x" * 40_000, "text/csv")}
        imported = await client.post("/api/registry/imports", files=upload, headers=headers)
        assert imported.status_code != 413
        assert imported.status_code in (401, 403, 404, 422), imported.text


async def test_services_refuse_requests_that_bypass_the_gateway_without_a_token(
    platform: LocalPlatform,
) -> None:
    async with httpx.AsyncClient(timeout=15) as client:
        for url in (
            f"{platform.registry_url}/members",
            f"{platform.registry_url}/members/export",
            f"{platform.notifications_url}/recipients/01a2205f-7f73-75bf-bdda-60145c9948cd/deliveries",
        ):
            response = await client.get(url)
            assert_problem(response, 401)
            assert response.headers["www-authenticate"].startswith("Bearer")
        posted = await client.post(f"{platform.registry_url}/members", json=MEMBER)
        assert_problem(posted, 401)


def hs256_with_public_key(issuer: LocalIssuer) -> str:
    header = {"alg": "HS256", "typ": "JWT", "kid": issuer.current_key.kid}
    signing_input = (
        f"{b64(json.dumps(header).encode())}.{b64(json.dumps(issuer.claims(admin())).encode())}"
    )
    mac = hmac.new(issuer.current_key.public_pem(), signing_input.encode(), hashlib.sha256)
    return f"{signing_input}.{b64(mac.digest())}"


def tampered(issuer: LocalIssuer) -> str:
    header, _payload, signature = issuer.token(citizen()).split(".")
    forged = b64(json.dumps(issuer.claims(admin())).encode())
    return f"{header}.{forged}.{signature}"


def unsigned(issuer: LocalIssuer) -> str:
    header = {"alg": "none", "typ": "JWT"}
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(issuer.claims(admin())).encode())}."


async def test_bad_tokens_get_401_with_the_reason_from_both_services(
    platform: LocalPlatform, start_gateway: GatewayFactory
) -> None:
    gateway = await start_gateway()
    issuer = platform.issuer
    cases = {
        "expired": (issuer.token(admin(), now=time.time() - 7200, lifetime=600), "expired"),
        "wrong issuer": (
            issuer.token(admin(), iss="https://evil.example/realms/x"),
            "another issuer",
        ),
        "wrong audience": (issuer.token(admin(), aud="another-api"), "another audience"),
        "unsigned": (unsigned(issuer), "'none'"),
        "tampered": (tampered(issuer), "signature does not verify"),
        "unknown key": (issuer.token(admin(), key=SigningKey.generate()), "does not publish"),
        "HS256 with the public key": (hs256_with_public_key(issuer), "'HS256'"),
        "not a JWT": ("hello", "not a well-formed JWT"),
    }
    member = "01a2205f-7f73-75bf-bdda-60145c9948cd"
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15) as client:
        for name, (token, reason) in cases.items():
            for path in (
                "/api/registry/members",
                f"/api/notifications/recipients/{member}/deliveries",
            ):
                response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
                problem = assert_problem(response, 401)
                assert reason in problem["detail"], (name, path, problem)
                challenge = response.headers["www-authenticate"]
                assert 'error="invalid_token"' in challenge, (name, challenge)
                assert token not in response.text

        # Key rotation at the issuer: new tokens work at once (the services refetch the JWKS
        # on an unknown key id), tokens signed with the previous key keep working.
        before = issuer.token(admin())
        assert (
            await client.get("/api/registry/members", headers={"Authorization": f"Bearer {before}"})
        ).status_code == 200
        issuer.rotate()
        after = issuer.token(admin())
        for token in (after, before):
            for path in (
                "/api/registry/members",
                f"/api/notifications/recipients/{member}/deliveries",
            ):
                response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
                assert response.status_code in (200, 404), response.text  # 404: no such recipient
        # A valid token whose role lacks the function: 403, not 401.
        response = await client.get(
            "/api/registry/members/search", params={"q": "ab"}, headers=issuer.headers(citizen())
        )
        assert_problem(response, 403)
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


async def test_identity_provider_outage_is_503_not_401(
    registry_database: str, kafka_bootstrap: str, topic_prefix: str, test_logs: Path
) -> None:
    """With the issuer's keys unreachable and none cached, the service cannot decide: 503."""
    port = free_port()
    dead = LocalIssuer(f"http://127.0.0.1:{free_port()}/dev-idp")
    process = ServiceProcess(
        "registry-api-dead-idp",
        ["uvicorn", "--factory", "registry.entrypoints.http:app", "--port", str(port)],
        service_env(
            "REGISTRY",
            database_url=registry_database,
            kafka=kafka_bootstrap,
            topic_prefix=topic_prefix,
            extra=dead.service_env("REGISTRY"),
        ),
        test_logs / "registry-dead-idp.log",
    ).start()
    try:
        url = f"http://127.0.0.1:{port}"

        async def up() -> bool:
            try:
                async with httpx.AsyncClient() as c:
                    return (await c.get(f"{url}/health/live")).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_until(up, timeout=30, message="registry with a dead issuer")
        async with httpx.AsyncClient(base_url=url, timeout=15) as client:
            response = await client.get("/members", headers=dead.headers(admin()))
        assert_problem(response, 503)
        assert response.headers["retry-after"] == "5"
    finally:
        process.stop()


async def test_metrics_and_readiness_details_are_not_reachable_through_the_gateway(
    platform: LocalPlatform, start_gateway: GatewayFactory
) -> None:
    """Issue 15: /api/registry/metrics answered anyone. Through the gateway, /metrics and
    the detailed readiness are 404 (however the path is spelled); liveness says only its
    status. On the services' own ports (probes, Prometheus) both still answer."""
    gateway = await start_gateway()
    spellings = (
        "metrics",
        "metrics/",
        "metrics?format=text",
        "./metrics",
        "x/../metrics",
        "%6detrics",
        "health/ready",
        "health/ready/",
        "health/%72eady",
    )
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15) as client:
        for service in ("registry", "notifications", "matching"):
            for spelling in spellings:
                response = await client.get(f"/api/{service}/{spelling}")
                assert_problem(response, 404)
                assert "http_request_duration" not in response.text, (service, spelling)
                assert "checks" not in response.text, (service, spelling)
        for service in ("registry", "notifications"):
            live = await client.get(f"/api/{service}/health/live")
            assert live.status_code == 200
            assert live.json() == {"status": "ok"}
    async with httpx.AsyncClient(timeout=15) as client:
        metrics = await client.get(f"{platform.registry_url}/metrics")
        assert metrics.status_code == 200
        assert "http_request_duration_seconds" in metrics.text
        ready = await client.get(f"{platform.registry_url}/health/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": True}
