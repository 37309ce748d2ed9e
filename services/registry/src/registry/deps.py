"""FastAPI dependencies handing routes the service's handles (:mod:`registry.resources`),
and the small checks routes of several features share."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from diaspora_identity.policy import Decision, Forbidden, Policy
from diaspora_identity.principal import Principal
from diaspora_service.problems import Problem
from registry.resources import Registry


def registry_of(request: Request) -> Registry:
    """The handles the application was built with (set by its lifespan)."""
    registry: Registry = request.app.state.service
    return registry


RegistryDep = Annotated[Registry, Depends(registry_of)]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


def invalid_field(field: str, message: str) -> Problem:
    """A 422 shaped like request validation errors, for checks made past the schema."""
    return Problem(
        422,
        "The request is not valid",
        detail="One or more fields are missing or invalid; see `errors`.",
        type_="https://diaspora.gouv.tg/problems/validation",
        errors=[{"field": field, "message": message, "code": "value_error"}],
    )


def embassy_filter(registry: Registry, value: str | None) -> str | None:
    """An embassy filter of a query: one of the jurisdictions' embassies (422 otherwise)."""
    if value is not None and value not in registry.identity.jurisdictions.embassies:
        raise Problem(422, "Unknown embassy", detail=f"{value!r} is not an embassy id")
    return value


def decision_if_allowed(
    policy: Policy, principal: Principal, resource: str, action: str
) -> Decision | None:
    """The caller's decision for an optional extra (e.g. document numbers), or None."""
    try:
        return policy.decide(principal, resource, action)
    except Forbidden:
        return None
