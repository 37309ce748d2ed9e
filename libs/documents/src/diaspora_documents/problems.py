"""Refused uploads and store errors as the platform's RFC 9457 problems.

A route that receives a document::

    try:
        async with checked_upload(read_chunks(file), filename=file.filename,
                                  content_type=file.content_type, limits=LIMITS) as upload:
            stored = await store.put(key, upload.chunks(), content_type=upload.content_type,
                                     sha256=upload.sha256)
    except UploadRefused as refusal:
        raise upload_problem(refusal) from None

answers 413, 415 or 422 with ``code`` (``bytes``, ``pages``, ``pixels``, ``expands``,
``type``, ``executable``, ``mismatch``, ``damaged``, ``encrypted``, ``active_content``);
never a 500 for a bad file.
"""

from __future__ import annotations

from typing import Any

import structlog

from diaspora_documents.checks import TooLarge, Unreadable, UnsupportedType, UploadRefused
from diaspora_documents.store import StoreUnavailable
from diaspora_service.problems import TYPE_BASE, Problem

log = structlog.get_logger(__name__)

# For a route's ``responses=`` (its OpenAPI document).
UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    TooLarge.status: {
        "description": "The document is larger than allowed: bytes, PDF pages, image pixels, "
        "or a structure that needs more memory or time to read than allowed"
    },
    UnsupportedType.status: {
        "description": "Not a PDF, JPEG or PNG by its content, or its name or declared "
        "content type does not match its content"
    },
    Unreadable.status: {
        "description": "A PDF, JPEG or PNG that is damaged, encrypted or has active content"
    },
}


def upload_problem(refusal: UploadRefused) -> Problem:
    """The problem to answer a refused upload with."""
    return Problem(
        refusal.status,
        refusal.title,
        detail=refusal.detail,
        type_=TYPE_BASE + "document-" + refusal.code.replace("_", "-"),
        code=refusal.code,
    )


def store_problem(error: StoreUnavailable) -> Problem:
    """503: the document store did not answer; nothing was stored, a retry may work (the
    store's error is logged, not shown: it names the bucket and the server)."""
    log.warning("document store unavailable", error=str(error))
    return Problem(
        503,
        "The document store is unavailable",
        detail="The document was not stored; try again shortly.",
        headers={"Retry-After": "5"},
    )
