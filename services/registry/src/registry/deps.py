"""FastAPI dependencies handing routes the service's handles (:mod:`registry.resources`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from registry.resources import Registry


def registry_of(request: Request) -> Registry:
    """The handles the application was built with (set by its lifespan)."""
    registry: Registry = request.app.state.registry
    return registry


RegistryDep = Annotated[Registry, Depends(registry_of)]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
