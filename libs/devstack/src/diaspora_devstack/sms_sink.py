"""A local SMS provider for tests and `make run`: records what it is sent.

The development stand-in for the SMS gateway the notifications service posts to
(``notifications.deliveries.sms.HttpSmsProvider``), beside the local mailbox.

DEVELOPMENT AND TESTS ONLY. It speaks the default payload of ``HttpSmsProvider``
(``{"to", "text", "reference"}``), answers 202 with an id, keeps the messages in
memory (``GET /messages``) and, when given a folder, one JSON line per message.
Tests make it fail on demand: ``fail_next(n, status)`` answers ``status`` (a 5xx
to be retried, a 4xx refused for good) to the next ``n`` requests, and numbers in
``refused`` always get 400.

    python -m diaspora_devstack.sms_sink --port 8190 --folder .local/sms
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@dataclass(frozen=True)
class Sms:
    id: str
    to: str
    text: str
    reference: str
    authorization: str | None


class SmsSink:
    def __init__(self, *, token: str | None = None, folder: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._messages: list[Sms] = []
        self._failures: list[int] = []
        self._delays: list[float] = []
        self.refused: set[str] = set()
        self.requests = 0
        self._token = token
        self._folder = folder

    def fail_next(self, count: int, status: int = 503) -> None:
        with self._lock:
            self._failures.extend([status] * count)

    def delay_next(self, count: int, seconds: float) -> None:
        """Answer the next ``count`` requests only after ``seconds`` (provider timeouts)."""
        with self._lock:
            self._delays.extend([seconds] * count)

    @property
    def messages(self) -> list[Sms]:
        with self._lock:
            return list(self._messages)

    async def _send(self, request: Request) -> JSONResponse:
        with self._lock:
            self.requests += 1
            failure = self._failures.pop(0) if self._failures else None
            delay = self._delays.pop(0) if self._delays else None
        if delay is not None:
            await asyncio.sleep(delay)
        if failure is not None:
            return JSONResponse({"error": "simulated failure"}, status_code=failure)
        authorization = request.headers.get("authorization")
        if self._token and authorization != f"Bearer {self._token}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        try:
            body: Any = json.loads(await request.body())
            to, text = str(body["to"]), str(body["text"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "payload needs to and text"}, status_code=400)
        if to in self.refused:
            return JSONResponse({"error": "number refused"}, status_code=400)
        sms = Sms(str(uuid.uuid4()), to, text, str(body.get("reference", "")), authorization)
        with self._lock:
            self._messages.append(sms)
        if self._folder is not None:
            self._folder.mkdir(parents=True, exist_ok=True)
            with (self._folder / "sms.jsonl").open("a", encoding="utf-8") as out:
                out.write(json.dumps({"to": to, "text": text, "reference": sms.reference}) + "\n")
            print(f"sms to {to}: {text}", flush=True)
        return JSONResponse({"id": sms.id}, status_code=202)

    async def _list(self, _request: Request) -> JSONResponse:
        return JSONResponse([m.__dict__ for m in self.messages])

    def asgi_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/messages", self._send, methods=["POST"]),
                Route("/messages", self._list, methods=["GET"]),
            ]
        )


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python -m diaspora_devstack.sms_sink", description=__doc__
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8190)
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--token", default=None)
    args = parser.parse_args(argv)
    sink = SmsSink(token=args.token, folder=args.folder)
    uvicorn.run(sink.asgi_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
