"""The platform's services, as the development tools see them: found through entry points.

Each service declares, in its pyproject.toml,

    [project.entry-points."diaspora.services"]
    <name> = "<package>.entrypoints.docs"

a module of its own that tells the tools (the AsyncAPI, OpenAPI and Kafka ACL
generators) what they need, without them importing any service by name:

- ``build_app()``: its FastAPI application (for its OpenAPI document); building it
  touches no database or broker;
- ``consumers(dead_letters)``: every Kafka consumer its worker runs, built for reading
  their topics and handled contracts (no database or broker is touched).

What a service publishes follows from the topic registry (a contract is published by the
owner of its topic). The libraries never import a service (checked by import-linter,
``make lint-imports``); this module loads them by entry point, in development only
(diaspora-devstack is in no production image).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from diaspora_events.consumer import DeadLetterSink, EventConsumer

ENTRY_POINT_GROUP = "diaspora.services"


async def no_dead_letters(
    *, topic: str, key: bytes | None, value: bytes | None, headers: dict[str, str]
) -> None:
    raise RuntimeError("documentation-only consumer: it handles no record")


@dataclass(frozen=True)
class Service:
    """One service, as declared by its ``diaspora.services`` entry point."""

    name: str
    module: Any  # the entry point's module (see the module docstring for what it holds)
    version: str = "0.0.0"

    def consumers(self) -> Sequence[EventConsumer]:
        build: Callable[[DeadLetterSink], Sequence[EventConsumer]] = self.module.consumers
        return build(no_dead_letters)

    def openapi(self) -> dict[str, Any] | None:
        """Its OpenAPI document; None for a service without an HTTP interface."""
        build_app = getattr(self.module, "build_app", None)
        if build_app is None:
            return None
        spec: dict[str, Any] = build_app().openapi()
        return spec

    @property
    def description(self) -> str:
        """The docstring of the service's top-level package."""
        package = importlib.import_module(self.module.__name__.partition(".")[0])
        return package.__doc__ or ""


def discover() -> dict[str, Service]:
    """Every installed service (entry point name → service), sorted by name."""
    found: dict[str, Service] = {}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in found:
            raise ValueError(f"two {ENTRY_POINT_GROUP!r} entry points are named {entry.name!r}")
        version = entry.dist.version if entry.dist is not None else "0.0.0"
        found[entry.name] = Service(name=entry.name, module=entry.load(), version=version)
    return dict(sorted(found.items()))
