"""Referrals in plain Python: the status machine, the SLA, who acts.

    referred --acknowledge--> acknowledged --complete--> done
        \\                         \\
         +--refuse (reason)-------+--> refused
         +--cancel (reason)-------+--> cancelled      (the return cell's case worker)

A case worker of the ministry's return cell refers one need of a case to a partner
organisation; the partner's case workers acknowledge it, then report it done or refused
(with a reason). A transition not allowed from the status, or not by this side, is
refused with the ones that are (409).

SLA: the partner acknowledges within ``acknowledge_days`` of the referral and reports
the outcome within ``complete_days`` of it; past either date, the worker's job flags
the referral overdue and escalates it to the ministry, once per stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Status = Literal["referred", "acknowledged", "done", "refused", "cancelled"]
Action = Literal["acknowledge", "complete", "refuse", "cancel"]
# partner: a case worker of the organisation referred to; cell: the ministry's return cell
# (case workers, coordinators); system: the SLA job.
Side = Literal["partner", "cell", "system"]
Stage = Literal["acknowledge", "complete"]

STATUSES: tuple[Status, ...] = ("referred", "acknowledged", "done", "refused", "cancelled")
OPEN: frozenset[Status] = frozenset({"referred", "acknowledged"})
CLOSED: frozenset[Status] = frozenset({"done", "refused", "cancelled"})


@dataclass(frozen=True)
class Transition:
    action: Action
    sources: frozenset[Status]
    target: Status
    sides: frozenset[Side]
    reason_required: bool = False


TRANSITIONS: tuple[Transition, ...] = (
    Transition("acknowledge", frozenset({"referred"}), "acknowledged", frozenset({"partner"})),
    Transition("complete", frozenset({"acknowledged"}), "done", frozenset({"partner"})),
    Transition("refuse", OPEN, "refused", frozenset({"partner"}), reason_required=True),
    Transition("cancel", OPEN, "cancelled", frozenset({"cell"}), reason_required=True),
)
BY_ACTION: dict[str, Transition] = {t.action: t for t in TRANSITIONS}


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


def allowed_actions(status: Status, side: Side | None) -> list[str]:
    if side is None:
        return []
    return [t.action for t in TRANSITIONS if status in t.sources and side in t.sides]


def transition(status: Status, action: str, side: Side, reason: str | None) -> Transition:
    """The transition ``side`` asks for, if allowed from ``status``."""
    found = BY_ACTION.get(action)
    if found is None or side not in found.sides or status not in found.sources:
        raise IllegalTransition(status, action, allowed_actions(status, side))
    if found.reason_required and not (reason and reason.strip()):
        raise ReasonRequired(action)
    return found


@dataclass(frozen=True)
class Deadlines:
    acknowledge_by: datetime
    complete_by: datetime


def deadlines(referred_at: datetime, *, acknowledge_days: int, complete_days: int) -> Deadlines:
    return Deadlines(
        acknowledge_by=referred_at + timedelta(days=acknowledge_days),
        complete_by=referred_at + timedelta(days=complete_days),
    )


def overdue_stage(
    status: Status, acknowledge_by: datetime, complete_by: datetime, now: datetime
) -> Stage | None:
    """The stage whose deadline has passed with the referral still waiting on it."""
    if status == "referred" and acknowledge_by < now:
        return "acknowledge"
    if status in OPEN and complete_by < now:
        return "complete"
    return None
