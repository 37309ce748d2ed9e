"""The one state machine of every consular application, in plain Python.

    draft -> submitted -> under_review -> information_requested <-> resubmitted
                                       -> approved -> issued -> collected
                                       -> rejected
    withdrawn (by the applicant, before a decision); expired (by the system: a draft never
    submitted, or information never given)

Each transition belongs to one side: the applicant (their own application), an officer
of the processing embassy, or the system (the periodic job). A transition not allowed
from the current status is refused with the ones that are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

Status = Literal[
    "draft",
    "submitted",
    "under_review",
    "information_requested",
    "resubmitted",
    "approved",
    "rejected",
    "issued",
    "collected",
    "withdrawn",
    "expired",
]
Action = Literal[
    "submit",
    "start_review",
    "request_information",
    "resubmit",
    "approve",
    "reject",
    "issue",
    "mark_collected",
    "withdraw",
    "expire",
    "record_production",
]
# "authority": the national documentation authority's system, answering a hand-over
# package (consular.handover): its "produced" issues a passport or identity card preparation.
Actor = Literal["applicant", "embassy_officer", "system", "authority"]


@dataclass(frozen=True)
class Transition:
    action: Action
    sources: frozenset[Status]
    target: Status
    actor: Actor
    reason_required: bool = False


def _t(
    action: Action, sources: set[Status], target: Status, actor: Actor, *, reason: bool = False
) -> Transition:
    return Transition(action, frozenset(sources), target, actor, reason)


BEFORE_DECISION: set[Status] = {
    "draft",
    "submitted",
    "under_review",
    "information_requested",
    "resubmitted",
}

TRANSITIONS: tuple[Transition, ...] = (
    _t("submit", {"draft"}, "submitted", "applicant"),
    _t("start_review", {"submitted", "resubmitted"}, "under_review", "embassy_officer"),
    _t(
        "request_information",
        {"submitted", "under_review", "resubmitted"},
        "information_requested",
        "embassy_officer",
        reason=True,
    ),
    _t("resubmit", {"information_requested"}, "resubmitted", "applicant"),
    _t("approve", {"under_review"}, "approved", "embassy_officer"),
    _t("reject", {"under_review"}, "rejected", "embassy_officer", reason=True),
    _t("issue", {"approved"}, "issued", "embassy_officer"),
    _t("mark_collected", {"issued"}, "collected", "embassy_officer"),
    _t("withdraw", BEFORE_DECISION, "withdrawn", "applicant"),
    _t("expire", {"draft", "information_requested"}, "expired", "system"),
    _t("record_production", {"approved"}, "issued", "authority"),
)
BY_ACTION: dict[str, Transition] = {t.action: t for t in TRANSITIONS}
APPLICANT_ACTIONS = frozenset(t.action for t in TRANSITIONS if t.actor == "applicant")
OFFICER_ACTIONS = frozenset(t.action for t in TRANSITIONS if t.actor == "embassy_officer")

# The statuses in which the embassy is expected to act: the SLA clock runs (it does not
# while the applicant owes information, nor after the decision).
SLA_RUNNING: frozenset[Status] = frozenset({"submitted", "under_review", "resubmitted"})
FINAL: frozenset[Status] = frozenset({"rejected", "collected", "withdrawn", "expired"})


class IllegalTransition(Exception):
    """The action is not possible from the application's status."""

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


def allowed_actions(status: Status, actor: Actor | None = None) -> list[str]:
    """The actions possible from ``status`` (for one side only when ``actor`` is given)."""
    return [
        t.action for t in TRANSITIONS if status in t.sources and (actor is None or t.actor == actor)
    ]


def transition(status: Status, action: str, actor: Actor, reason: str | None) -> Transition:
    """The transition ``actor`` asks for, if allowed from ``status``."""
    found = BY_ACTION.get(action)
    if found is None or found.actor != actor or status not in found.sources:
        raise IllegalTransition(status, action, allowed_actions(status, actor))
    if found.reason_required and not (reason and reason.strip()):
        raise ReasonRequired(action)
    return found


def decision_reference(service_type: str, application_id: UUID, at: datetime) -> str:
    """The reference of a decision: the type's initials, the year, 10 hex digits of the
    (random) application id, e.g. ``EV-2026-3F9A1C07B2`` for an e-visa."""
    initials = "".join(word[0] for word in service_type.split("_") if word).upper()
    return f"{initials}-{at.year}-{application_id.hex[:10].upper()}"


def due_at(submitted_at: datetime, target_days: int) -> datetime:
    """When a decision is due: the type's target processing days after submission."""
    return submitted_at + timedelta(days=target_days)


def is_overdue(status: Status, due: datetime | None, now: datetime) -> bool:
    return due is not None and status in SLA_RUNNING and due < now
