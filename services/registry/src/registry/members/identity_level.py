"""A member's identity verification level, as the record and its snapshot show it.

The checks themselves (who saw which document, when) are the ``identity`` feature's
history (``identity_verifications``). The members row keeps only their summary, column
``identity_checks``: per level, the check that stays valid longest (latest document
expiry, then the latest recorded). The level shown is the strongest of those whose
document has not expired: ``in_person`` (the document seen at the embassy) over
``document_checked`` (a copy checked remotely). A weaker check recorded later never
lowers it, and the level lapses by itself when the document expires, with no job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

# Weakest first.
LEVELS: tuple[str, ...] = ("document_checked", "in_person")
LEVEL_OF_METHOD: dict[str, str] = {
    "document_upload": "document_checked",
    "document_in_person": "in_person",
}
# What the summary keeps of each check (JSON: dates as ISO strings).
SUMMARY_FIELDS = ("level", "method", "document_type", "verified_at", "embassy_id", "expires_on")


def _date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _instant(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def summary_of(checks: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]] | None:
    """The ``identity_checks`` column for these checks (each with :data:`SUMMARY_FIELDS`,
    ``expires_on`` the document's expiry): per level, the one valid longest."""
    best: dict[str, Mapping[str, Any]] = {}
    for check in checks:
        level = check["level"]
        kept = best.get(level)
        key = (_date(check["expires_on"]), _instant(check["verified_at"]))
        if kept is None or key > (_date(kept["expires_on"]), _instant(kept["verified_at"])):
            best[level] = check
    if not best:
        return None
    return {
        level: {
            f: (check[f].isoformat() if isinstance(check[f], date) else check[f])
            for f in SUMMARY_FIELDS
        }
        for level, check in best.items()
    }


def current_identity(summary: Mapping[str, Any] | None, today: date) -> dict[str, Any] | None:
    """The strongest check of ``summary`` whose document has not expired by ``today``
    (valid through its expiry date), or None: nobody verified the person, or every
    document seen has expired."""
    if not summary:
        return None
    for level in reversed(LEVELS):
        check = summary.get(level)
        if check is not None and _date(check["expires_on"]) >= today:
            return {
                "level": level,
                "method": check["method"],
                "document_type": check["document_type"],
                "verified_at": _instant(check["verified_at"]),
                "embassy_id": check["embassy_id"],
                "expires_on": _date(check["expires_on"]),
            }
    return None
