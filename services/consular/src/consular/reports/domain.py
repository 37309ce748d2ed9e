"""Difficulty reports in plain Python: the status machine, the SLA, the months counted.

    open -> in_progress <-> waiting_for_reporter
         -> resolved -> closed            (resolved -> in_progress: reopened)
    closed also by the reporter's withdrawal (before resolution)

Two sides act on a report: the reporter (their own: the citizen, or the person a focal
point filed for) and the staff (a focal point of the embassy it is routed to, or the
ministry's coordinators). A transition not allowed from the status is refused with the
ones that are (409).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Status = Literal["open", "in_progress", "waiting_for_reporter", "resolved", "closed"]
Action = Literal["start", "request_information", "resume", "resolve", "reopen", "close", "withdraw"]
Side = Literal["reporter", "staff", "system"]

STATUSES: tuple[Status, ...] = ("open", "in_progress", "waiting_for_reporter", "resolved", "closed")

# The categories seeded by migration 0005 (the ministry edits the list).
SEED_CATEGORIES: tuple[str, ...] = (
    "civil_status",
    "documents",
    "residence",
    "work_rights",
    "detention",
    "discrimination",
    "other",
)


@dataclass(frozen=True)
class Transition:
    action: Action
    sources: frozenset[Status]
    target: Status
    sides: frozenset[Side]
    reason_required: bool = False


def _t(
    action: Action,
    sources: set[Status],
    target: Status,
    sides: set[Side],
    *,
    reason: bool = False,
) -> Transition:
    return Transition(action, frozenset(sources), target, frozenset(sides), reason)


UNRESOLVED: set[Status] = {"open", "in_progress", "waiting_for_reporter"}

TRANSITIONS: tuple[Transition, ...] = (
    _t("start", {"open"}, "in_progress", {"staff"}),
    _t(
        "request_information",
        {"open", "in_progress"},
        "waiting_for_reporter",
        {"staff"},
        reason=True,
    ),
    # Also done for the reporter when they post a message while they are waited for.
    _t("resume", {"waiting_for_reporter"}, "in_progress", {"staff"}),
    _t("resolve", UNRESOLVED, "resolved", {"staff"}, reason=True),
    _t("reopen", {"resolved"}, "in_progress", {"staff", "reporter"}),
    _t("close", {"resolved"}, "closed", {"staff", "reporter"}),
    _t("withdraw", UNRESOLVED, "closed", {"reporter"}),
)
BY_ACTION: dict[str, Transition] = {t.action: t for t in TRANSITIONS}

# The staff is expected to act: the SLA clock runs (not while the reporter is waited for).
SLA_RUNNING: frozenset[Status] = frozenset({"open", "in_progress"})


class IllegalTransition(Exception):
    def __init__(self, status: Status, action: str, allowed: list[str]) -> None:
        listed = ", ".join(allowed) if allowed else "none"
        super().__init__(f"{action} is not possible from {status}; allowed now: {listed}")
        self.status = status
        self.action = action
        self.allowed = allowed


class ReasonRequired(Exception):
    def __init__(self, action: str) -> None:
        super().__init__(f"{action} needs a reason")
        self.action = action


def allowed_actions(status: Status, side: Side) -> list[str]:
    return [t.action for t in TRANSITIONS if status in t.sources and side in t.sides]


def transition(status: Status, action: str, side: Side, reason: str | None) -> Transition:
    """The transition ``side`` asks for, if allowed from ``status``."""
    found = BY_ACTION.get(action)
    if found is None or side not in found.sides or status not in found.sources:
        raise IllegalTransition(status, action, allowed_actions(status, side))
    if found.reason_required and not (reason and reason.strip()):
        raise ReasonRequired(action)
    return found


def due_at(filed_at: datetime, target_days: int) -> datetime:
    return filed_at + timedelta(days=target_days)


def is_overdue(status: Status, due: datetime | None, now: datetime) -> bool:
    return due is not None and status in SLA_RUNNING and due < now


def month_of(at: datetime) -> str:
    """The month a report counts in (UTC), e.g. ``2026-12``."""
    return f"{at.year:04d}-{at.month:02d}"
