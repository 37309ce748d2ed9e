"""Problem details this service's routes share."""

from __future__ import annotations

from diaspora_service.problems import TYPE_BASE, Problem


def invalid(title: str, errors: list[dict[str, str]]) -> Problem:
    """A 422 naming each field that is wrong, in the shape of request validation errors."""
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return Problem(422, title, detail=detail, type_=TYPE_BASE + "validation", errors=errors)


def not_found(what: str) -> Problem:
    return Problem(404, "Not found", detail=f"No such {what}.")
