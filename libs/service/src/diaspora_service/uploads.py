"""Uploads: the caller is authorized before a byte of the body is read, and the body is capped.

A multipart upload is parsed (and spooled to disk) by the framework *before* the route's
dependencies run, so a token checked in the route comes too late: anyone could make the
service read and store 50 MB. Every service's app (``create_app(uploads=...)``) runs
:class:`UploadGuard`, which, for the routes declared as uploads:

1. runs the route's ``authorize`` hook on the request *headers* only (the bearer token
   and the policy decision: 401 / 403 problems), before the app receives anything;
2. refuses a declared ``Content-Length`` above the route's limit (413 problem);
3. counts the bytes as the app reads them and stops at the limit (413 problem) when
   the length was not declared (chunked transfer) or was understated.

Nothing of the body is read before steps 1 and 2 pass: the refusal is sent while the client
may still be sending (docs/security.md).

A route's path may have parameters as FastAPI writes them (``/applications/{id}/documents``):
a parameter matches one path segment (no ``/``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from diaspora_service.problems import Problem, problem_response

# Raises a Problem (401, 403, 503...) to refuse; returns to let the request through.
Authorize = Callable[[Request], Awaitable[None]]


@dataclass(frozen=True)
class UploadRoute:
    """A route whose body is an upload: who may send it, and how large it may be."""

    method: str
    path: str
    authorize: Authorize
    max_bytes: int


def _path_pattern(path: str) -> re.Pattern[str]:
    """The route's path as a regular expression: ``{name}`` is one segment."""
    parts = re.split(r"\{[A-Za-z_][A-Za-z0-9_]*\}", path.rstrip("/") or "/")
    return re.compile("[^/]+".join(re.escape(part) for part in parts))


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when the body passes the limit (rendered as a 413 problem)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Uploads here are limited to {limit} bytes.")


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class UploadGuard:
    """ASGI middleware enforcing :class:`UploadRoute` declarations (see the module)."""

    def __init__(self, app: ASGIApp, routes: Sequence[UploadRoute] = ()) -> None:
        self.app = app
        self.routes = {(r.method.upper(), r.path.rstrip("/") or "/"): r for r in routes}
        # Routes with path parameters, matched in order when no fixed path is equal.
        self.templates = [
            (r.method.upper(), _path_pattern(r.path), r) for r in routes if "{" in r.path
        ]

    def _route(self, method: str, path: str) -> UploadRoute | None:
        path = path.rstrip("/") or "/"
        route = self.routes.get((method, path))
        if route is not None:
            return route
        for wanted, pattern, templated in self.templates:
            if wanted == method and pattern.fullmatch(path):
                return templated
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.routes:
            await self.app(scope, receive, send)
            return
        route = self._route(scope["method"], scope["path"])
        if route is None:
            await self.app(scope, receive, send)
            return
        try:
            # Headers only: this Request has no way to read the body.
            await route.authorize(Request(scope))
        except Problem as refusal:
            await self._refuse(scope, receive, send, refusal)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > route.max_bytes:
            too_large = Problem(413, "File too large", detail=_limit(route))
            await self._refuse(scope, receive, send, too_large)
            return

        received = 0

        async def capped() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > route.max_bytes:
                    raise BodyTooLarge(route.max_bytes)
            return message

        await self.app(scope, capped, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, problem: Problem) -> None:
        response = problem_response(
            problem.status,
            problem.title,
            detail=problem.detail,
            type_=problem.type,
            instance=scope.get("path"),
            headers={**(problem.headers or {}), "Connection": "close"},
            **problem.extensions,
        )

        # The whole answer goes out first; the end of the response (after which the server
        # closes the connection) only once what the client had sent is dropped (_linger).
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": response.raw_headers,
            }
        )
        await send({"type": "http.response.body", "body": bytes(response.body), "more_body": True})
        await _linger(receive)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


# After a refusal has been sent: what the client sends meanwhile is read and dropped, up to
# this much, so that closing the connection does not reset it before the client reads the
# answer (a TCP close with unread data sends a reset, which can destroy the answer in
# flight: nginx's "lingering close"). Never parsed nor kept; a larger body is cut off.
LINGER_BYTES = 1024 * 1024
LINGER_SECONDS = 1.0


async def _linger(receive: Receive) -> None:
    dropped = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(LINGER_SECONDS):
            while dropped <= LINGER_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    return
                dropped += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return


def _limit(route: UploadRoute) -> str:
    return f"Uploads here are limited to {route.max_bytes} bytes."
