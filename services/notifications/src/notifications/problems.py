"""Problem details this service's routes share."""

from __future__ import annotations

from diaspora_service.problems import TYPE_BASE, Problem


def invalid(title: str, errors: list[dict[str, str]]) -> Problem:
    """A 422 naming what is wrong, in the shape of request validation errors."""
    return Problem(422, title, type_=TYPE_BASE + "validation", errors=errors)
