"""What the development tools need to know of the registry (docs, Kafka ACLs).

Found through the ``diaspora.services`` entry point of pyproject.toml by
diaspora_devstack (AsyncAPI and OpenAPI documents, Kafka ACLs); nothing here runs in
production. ``build_app`` gives the HTTP app, ``consumers`` every consumer the worker
runs, built for reading their topics and contracts (no database or broker is touched).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import async_sessionmaker

from diaspora_events.consumer import DeadLetterSink, EventConsumer
from registry.access_log.consumer import build_consumer as build_access_log_consumer
from registry.entrypoints.http import build_app
from registry.statistics.consumer import build_consumer as build_read_models_consumer

__all__ = ["build_app", "consumers"]


def consumers(dead_letters: DeadLetterSink) -> list[EventConsumer]:
    # The read models (statistics, search) fed by the registry's own member events, and
    # the person's access log fed by the other services' audit events.
    return [
        build_read_models_consumer(sessions=async_sessionmaker(), dead_letters=dead_letters),
        build_access_log_consumer(sessions=async_sessionmaker(), dead_letters=dead_letters),
    ]
