"""What the development tools need to know of returnees (docs, Kafka ACLs).

Found through the ``diaspora.services`` entry point of pyproject.toml by
diaspora_devstack (AsyncAPI and OpenAPI documents, Kafka ACLs); nothing here runs in
production. ``build_app`` gives the HTTP app, ``consumers`` every consumer the worker
runs, built for reading their topics and contracts (no database or broker is touched).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import async_sessionmaker

from diaspora_events.consumer import DeadLetterSink, EventConsumer
from returnees.bootstrap import consumers as build_consumers
from returnees.entrypoints.http import build_app

__all__ = ["build_app", "consumers"]


def consumers(dead_letters: DeadLetterSink) -> list[EventConsumer]:
    return build_consumers(sessions=async_sessionmaker(), dead_letters=dead_letters)
