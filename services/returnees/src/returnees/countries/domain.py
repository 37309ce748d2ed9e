"""Country lists in plain Python: codes checked against their references, the
watchlist's status machine and its four-eyes rule.

    draft -> under_review -> published -> withdrawn
             under_review -> draft        (returned to the proposer)
    draft, under_review -> withdrawn      (dropped)

An entry is proposed by an analyst (or a coordinator); a *second* analyst or coordinator
reviews it: the proposer may submit it but never publish it (four-eyes). A transition
not allowed from the status is refused with the ones that are (409).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pycountry

from diaspora_reference import isco

Status = Literal["draft", "under_review", "published", "withdrawn"]
Action = Literal["submit", "return", "publish", "withdraw"]
Level = Literal["caution", "warning", "avoid"]

STATUSES: tuple[Status, ...] = ("draft", "under_review", "published", "withdrawn")


@dataclass(frozen=True)
class Transition:
    action: Action
    sources: frozenset[Status]
    target: Status
    reviewer_only: bool = False  # not by the entry's proposer (four-eyes)


TRANSITIONS: tuple[Transition, ...] = (
    Transition("submit", frozenset({"draft"}), "under_review"),
    Transition("return", frozenset({"under_review"}), "draft", reviewer_only=True),
    Transition("publish", frozenset({"under_review"}), "published", reviewer_only=True),
    Transition("withdraw", frozenset({"draft", "under_review", "published"}), "withdrawn"),
)
BY_ACTION = {t.action: t for t in TRANSITIONS}


class IllegalTransition(Exception):
    def __init__(self, status: Status, action: str, allowed: list[str]) -> None:
        listed = ", ".join(allowed) if allowed else "none"
        super().__init__(f"{action} is not possible from {status}; allowed now: {listed}")
        self.status = status
        self.action = action
        self.allowed = allowed


class FourEyes(Exception):
    """The entry's proposer asked for what only a second reviewer may do."""

    def __init__(self, action: str) -> None:
        super().__init__(
            f"{action} needs a second analyst or coordinator: the proposer of an entry "
            "may not review it"
        )
        self.action = action


def allowed_actions(status: Status, *, proposer: bool) -> list[str]:
    """What the caller may do now (the proposer: never review their own entry)."""
    return [
        t.action for t in TRANSITIONS if status in t.sources and not (proposer and t.reviewer_only)
    ]


def next_status(status: Status, action: str, *, proposer: bool) -> Status:
    """The status after ``action``; IllegalTransition or FourEyes when refused."""
    transition = BY_ACTION.get(action)  # type: ignore[call-overload]
    if transition is None or status not in transition.sources:
        raise IllegalTransition(status, action, allowed_actions(status, proposer=proposer))
    if transition.reviewer_only and proposer:
        raise FourEyes(action)
    target: Status = transition.target
    return target


# --- codes ----------------------------------------------------------------------------


def country_problem(code: str) -> str | None:
    """Why ``code`` is not an ISO 3166-1 alpha-2 country (upper case), or None."""
    if len(code) != 2 or not code.isupper() or pycountry.countries.get(alpha_2=code) is None:
        return f"{code!r} is not an ISO 3166-1 alpha-2 country code (e.g. SA, LY)"
    return None


def occupation_problems(codes: list[str]) -> list[tuple[int, str]]:
    """(position, reason) of each code that is not an ISCO-08 group of the
    reference data the project ships (diaspora_reference.isco)."""
    return [
        (i, f"{code!r} is not an ISCO-08 code (major group to unit group, e.g. 7112)")
        for i, code in enumerate(codes)
        if not isco.is_valid(code)
    ]
