"""National needs: vocabulary, lifecycle and the checks on what a coordinator writes.

Plain Python: no database, no framework.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal, get_args

import pycountry

from diaspora_events.contracts.matching import NeedStatus, NeedType, WorkMode
from diaspora_reference import esco, isco, togo

InstitutionKind = Literal[
    "university", "school", "hospital", "ministry", "local_community", "agency", "other"
]
NEED_TYPES: Final = frozenset(get_args(NeedType))
WORK_MODES: Final = frozenset(get_args(WorkMode))

# The lifecycle: which status may follow which. Everything else is a conflict (409).
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "draft": frozenset({"open", "cancelled"}),
    "open": frozenset({"matching", "cancelled", "expired"}),
    # Back to matching when every proposal was declined and others must be found.
    "matching": frozenset({"proposals_sent", "cancelled", "expired"}),
    "proposals_sent": frozenset({"filled", "matching", "cancelled", "expired"}),
    "filled": frozenset(),
    "cancelled": frozenset(),
    "expired": frozenset(),
}
CLOSED: Final = frozenset({"filled", "cancelled", "expired"})
# A need past its start date (its end date when it has no start) that is still in one
# of these is expired by the worker.
EXPIRABLE: Final = frozenset({"open", "matching", "proposals_sent"})
# Details can change until proposals went out; after that only the status moves.
EDITABLE: Final = frozenset({"draft", "open", "matching"})
# Statuses that make a need visible beyond the coordinators (drafts are not).
PUBLISHED: Final = frozenset(set(TRANSITIONS) - {"draft"})


class InvalidNeed(ValueError):
    """What a coordinator wrote is not a need (rendered as a 422 with the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class IllegalTransition(Exception):
    def __init__(self, current: str, wanted: str) -> None:
        allowed = sorted(TRANSITIONS.get(current, ()))
        super().__init__(
            f"a {current} need cannot become {wanted}"
            + (f"; it can become {', '.join(allowed)}" if allowed else "; it is closed")
        )
        self.current = current
        self.wanted = wanted
        self.allowed = allowed


def check_transition(current: str, wanted: str) -> None:
    if wanted not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(current, wanted)


def lifecycle_path(current: str, wanted: str) -> list[str]:
    """The statuses from ``current`` to ``wanted`` (included), shortest, never through
    a closed status: open -> proposals_sent goes through matching. Raises
    IllegalTransition when there is none."""
    if current == wanted:
        return []
    trails = [[current]]
    seen = {current}
    while trails:
        following: list[list[str]] = []
        for trail in trails:
            for step in sorted(TRANSITIONS.get(trail[-1], frozenset())):
                if step == wanted:
                    return [*trail[1:], step]
                if step not in seen and step not in CLOSED:
                    seen.add(step)
                    following.append([*trail, step])
        trails = following
    raise IllegalTransition(current, wanted)


@dataclass(frozen=True)
class SkillSought:
    """An ESCO skill (its URI) or a free-text skill (its label)."""

    label: str
    esco_uri: str | None = None


def occupations(codes: Iterable[str]) -> list[str]:
    """ISCO-08 codes, any level (1 to 4 digits), as known to the reference data."""
    found: list[str] = []
    for code in codes:
        code = code.strip()
        if not isco.is_valid(code):
            raise InvalidNeed("occupations", f"{code!r} is not an ISCO-08 group code")
        if code not in found:
            found.append(code)
    return found


def skills(items: Iterable[SkillSought]) -> list[SkillSought]:
    """Skills sought: an ESCO URI must exist (its label comes from ESCO when absent)."""
    found: list[SkillSought] = []
    for item in items:
        if item.esco_uri is not None:
            known = esco.skill(item.esco_uri)
            if known is None:
                raise InvalidNeed("skills", f"{item.esco_uri!r} is not an ESCO skill URI")
            item = SkillSought(
                label=item.label.strip() or known.label("fr"), esco_uri=item.esco_uri
            )
        elif not item.label.strip():
            raise InvalidNeed("skills", "a skill needs an ESCO URI or a label")
        else:
            item = SkillSought(label=item.label.strip())
        if item not in found:
            found.append(item)
    return found


def languages(codes: Iterable[str]) -> list[str]:
    found: list[str] = []
    for code in codes:
        code = code.strip().lower()
        if len(code) != 2 or pycountry.languages.get(alpha_2=code) is None:
            raise InvalidNeed("languages", f"{code!r} is not an ISO 639-1 language code")
        if code not in found:
            found.append(code)
    return found


def place(region: str, prefecture: str | None) -> tuple[str, str | None]:
    """Region (ISO 3166-2:TG code or name) and prefecture of Togo, as codes."""
    try:
        code = togo.region(region).code
    except togo.UnknownLocality as error:
        raise InvalidNeed("region", str(error)) from None
    if not prefecture:
        return code, None
    try:
        return code, togo.prefecture(prefecture, code).slug
    except togo.UnknownLocality as error:
        raise InvalidNeed("prefecture", str(error)) from None


def dates(starts_on: date | None, ends_on: date | None, duration_days: int | None) -> None:
    if starts_on and ends_on and ends_on < starts_on:
        raise InvalidNeed("ends_on", "the need ends before it starts")
    if starts_on and ends_on and duration_days and duration_days > (ends_on - starts_on).days + 1:
        raise InvalidNeed("duration_days", "longer than the period between the dates")


def expires_on(starts_on: date | None, ends_on: date | None) -> date | None:
    """The day after which an unfilled need expires: its start, else its end."""
    return starts_on or ends_on


def need_status(value: str) -> NeedStatus:
    if value not in TRANSITIONS:
        raise InvalidNeed("status", f"{value!r} is not a need status")
    return value  # type: ignore[return-value]
