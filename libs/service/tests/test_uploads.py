"""Uploads are authorized from the headers before any of the body is read, and capped."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Request
from starlette.requests import Request as StarletteRequest

from diaspora_service.app import create_app
from diaspora_service.problems import Problem
from diaspora_service.uploads import LINGER_BYTES, UploadRoute

MB = 1024 * 1024
CHUNK = 64 * 1024


class Body:
    """A large request body produced lazily, counting what the server pulled of it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.size:
            chunk = b"x" * min(CHUNK, self.size - self.sent)
            self.sent += len(chunk)
            yield chunk


async def only_with_the_key(request: StarletteRequest) -> None:
    if request.headers.get("authorization") != "Bearer good":
        raise Problem(
            401, "Authentication required", headers={"WWW-Authenticate": 'Bearer realm="t"'}
        )
    if request.headers.get("x-role") != "uploader":
        raise Problem(403, "Forbidden", detail="you may not upload")


def application(max_bytes: int = 60 * MB) -> Any:
    router = APIRouter()
    read: list[int] = []

    @router.post("/uploads")
    async def upload(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        read.append(size)
        return {"size": size}

    application = create_app(
        title="t",
        version="0",
        description="t",
        routers=[router],
        uploads=[UploadRoute("POST", "/uploads", only_with_the_key, max_bytes)],
    )
    application.state.read = read
    return application


def app(max_bytes: int = 60 * MB) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=application(max_bytes))
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def call(
    application: Any, headers: dict[str, str], size: int
) -> tuple[list[str], int, dict[str, Any]]:
    """One request straight through the ASGI app: what happened in order (``receive`` for
    each body chunk the app pulled, the response messages), the status and the answer."""
    events: list[str] = []
    left = size
    status = 0
    body = b""

    async def receive() -> dict[str, Any]:
        nonlocal left
        events.append("receive")
        chunk = min(CHUNK, left)
        left -= chunk
        return {"type": "http.request", "body": b"x" * chunk, "more_body": left > 0}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, body
        events.append(message["type"])
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            body += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/uploads",
        "raw_path": b"/uploads",
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("t", 80),
        "state": {},
    }
    await application(scope, receive, send)
    return events, status, json.loads(body)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"authorization": "Bearer good"}, 403),
        # Allowed, but declaring more than the limit.
        ({"authorization": "Bearer good", "x-role": "uploader"}, 413),
    ],
    ids=["no token", "no grant", "too large"],
)
async def test_a_refused_upload_is_answered_before_any_of_its_body_is_read(
    headers: dict[str, str], status: int
) -> None:
    size = 50 * MB
    events, answered, problem = await call(
        application(max_bytes=20 * MB), headers | {"content-length": str(size)}, size
    )
    assert answered == status
    assert problem["status"] == status
    # The whole answer went out before the app pulled a single chunk of the body ...
    assert events[:2] == ["http.response.start", "http.response.body"], events[:5]
    # ... then at most LINGER_BYTES were dropped so that the close does not reset it.
    assert events.count("receive") <= LINGER_BYTES // CHUNK + 1
    assert events[-1] == "http.response.body"


async def test_an_undeclared_length_is_cut_at_the_limit() -> None:
    body = Body(3 * MB)  # chunked: no Content-Length
    async with app(max_bytes=1 * MB) as client:
        answer = await client.post(
            "/uploads",
            content=body,
            headers={"authorization": "Bearer good", "x-role": "uploader"},
        )
    assert answer.status_code == 413, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert body.sent <= 1 * MB + CHUNK  # reading stopped at the limit


async def test_an_allowed_upload_and_other_routes_pass() -> None:
    body = Body(3 * MB)
    async with app() as client:
        answer = await client.post(
            "/uploads",
            content=body,
            headers={"authorization": "Bearer good", "x-role": "uploader"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"size": 3 * MB}
        assert (await client.get("/health/live")).status_code == 200


async def test_a_route_with_path_parameters_is_guarded_on_every_matching_path() -> None:
    router = APIRouter()

    @router.post("/cases/{case_id}/files")
    async def upload(case_id: str, request: Request) -> dict[str, Any]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"case": case_id, "size": size}

    @router.post("/cases/{case_id}/files/{file_id}/notes")
    async def note(case_id: str, file_id: str) -> dict[str, str]:
        return {"case": case_id}

    guarded = create_app(
        title="t",
        version="0",
        description="t",
        routers=[router],
        uploads=[UploadRoute("POST", "/cases/{case_id}/files", only_with_the_key, 1 * MB)],
    )
    allowed = {"authorization": "Bearer good", "x-role": "uploader"}
    transport = httpx.ASGITransport(app=guarded)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        refused = await client.post("/cases/c-1/files", content=b"x" * 10)
        assert refused.status_code == 401, refused.text
        too_large = await client.post("/cases/c-2/files", content=Body(3 * MB), headers=allowed)
        assert too_large.status_code == 413, too_large.text
        passed = await client.post("/cases/c-3/files", content=b"x" * 10, headers=allowed)
        assert passed.json() == {"case": "c-3", "size": 10}
        # A parameter is one segment: a longer path is another route, not guarded.
        other = await client.post("/cases/c-4/files/f/notes")
        assert other.status_code == 200, other.text
