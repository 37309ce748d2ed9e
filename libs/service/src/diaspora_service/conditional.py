"""Optimistic concurrency over HTTP: a record's version as its ETag, If-Match on changes.

Every service reads If-Match and writes ETag the same way (RFC 9110 §13.1.1): the
ETag is the record's version in quotes (``"3"``); ``*`` or no If-Match means "any
version"; a weak or malformed If-Match never matches, so the change is refused with
412 rather than applied to a version the client did not mean.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Header, Response

from diaspora_service.problems import Problem

_STRONG_ETAG = re.compile(r'\s*"(\d{1,9})"\s*')

IfMatch = Annotated[
    str | None,
    Header(
        max_length=64,
        description='The record\'s ETag (e.g. "3"): the change applies only to that version.',
    ),
]

PRECONDITION_RESPONSES: dict[int | str, dict[str, Any]] = {
    412: {"description": "If-Match names another version of the record (problem details)"}
}


def expected_version(if_match: str | None) -> int | None:
    """The version If-Match names; None without If-Match (or with ``*``)."""
    if if_match is None or if_match.strip() == "*":
        return None
    found = _STRONG_ETAG.fullmatch(if_match)
    if found is None:
        raise Problem(
            412,
            "Precondition failed",
            detail='If-Match must be the record\'s ETag, e.g. "3" (weak ETags never match).',
        )
    return int(found.group(1))


def set_etag(response: Response, version: int | None) -> None:
    if version is not None:
        response.headers["ETag"] = f'"{version}"'


def version_conflict(current: int) -> Problem:
    """412 for a change made against an older version; carries the current ETag."""
    return Problem(
        412,
        "Precondition failed",
        detail="The record changed since you read it; read it again and retry.",
        headers={"ETag": f'"{current}"'},
        current_version=current,
    )
