"""Keeping the cyclic garbage collector off the long-lived objects of a process.

The registry loads large reference tables (gazetteer, ISCO-08, ESCO, phone number
metadata) and many modules; they live as long as the process. CPython's cyclic
collector walks every tracked object at each full collection, and a bulk import
or a stream of registrations allocates enough for full collections to come
often: without this, a tenth or more of an import's CPU went into walking
objects that can never be garbage. :func:`freeze_long_lived` moves what is
alive now into the permanent generation, which the collector skips (objects
created afterwards are collected as usual).
"""

from __future__ import annotations

import gc

import structlog

log = structlog.get_logger(__name__)


def freeze_long_lived() -> None:
    """Collect garbage now, then exempt every surviving object from later collections."""
    gc.collect()
    gc.freeze()
    log.debug("heap_frozen", objects=gc.get_freeze_count())
