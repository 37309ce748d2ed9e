"""What the development tools need to know of matching (docs, Kafka ACLs).

Found through the ``diaspora.services`` entry point of pyproject.toml by
diaspora_devstack (AsyncAPI and OpenAPI documents, Kafka ACLs); nothing here runs in
production. ``build_app`` gives the HTTP app, ``consumers`` every consumer the worker
runs, built for reading their topics and contracts (no database or broker is touched).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import async_sessionmaker

from diaspora_events.consumer import DeadLetterSink, EventConsumer
from diaspora_events.outbox import OutboxWriter
from matching import SERVICE_NAME
from matching.bootstrap import consumers as build_consumers
from matching.entrypoints.http import build_app
from matching.tables import outbox

__all__ = ["build_app", "consumers"]


def consumers(dead_letters: DeadLetterSink) -> list[EventConsumer]:
    # The experts read model, fed by the registry's member events; proposals, missions
    # and projects of erased or merged members.
    return build_consumers(
        sessions=async_sessionmaker(),
        outbox=OutboxWriter(outbox, source=f"/tg/diaspora/{SERVICE_NAME}"),
        dead_letters=dead_letters,
    )
