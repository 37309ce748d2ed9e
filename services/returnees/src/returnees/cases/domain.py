"""Rules of a returnee's case, in plain Python: its state machine, the follow-up dates
and the areas of the needs assessment."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from typing import Literal

Status = Literal["declared", "open", "assessed", "in_plan", "closed", "cancelled"]
Action = Literal["intake", "assess", "plan", "close", "cancel"]
Origin = Literal["case_worker", "pre_return", "laissez_passer"]

NEED_AREAS = (
    "reception",
    "housing",
    "health",
    "psychosocial",
    "documents",
    "training",
    "employment",
    "business_start_up",
)
NeedArea = Literal[
    "reception",
    "housing",
    "health",
    "psychosocial",
    "documents",
    "training",
    "employment",
    "business_start_up",
]
Priority = Literal["high", "medium", "low"]
Reason = Literal[
    "voluntary",
    "assisted_voluntary",
    "expelled",
    "end_of_contract",
    "humanitarian",
    "other",
]
Vulnerability = Literal[
    "unaccompanied_minor",
    "victim_of_trafficking",
    "medical_condition",
    "disability",
    "pregnant",
    "elderly",
    "survivor_of_violence",
    "destitute",
]
Outcome = Literal["reintegrated", "partially_reintegrated", "re_migrated", "lost_contact", "other"]

# The follow-ups every case has once the return date is known (months after return).
FOLLOW_UP_MONTHS = (3, 6, 12)

# (from status, action) -> to status. `assess` may be repeated (the assessment updated).
TRANSITIONS: dict[tuple[Status, Action], Status] = {
    ("declared", "intake"): "open",
    ("declared", "cancel"): "cancelled",
    ("open", "intake"): "open",
    ("open", "assess"): "assessed",
    ("open", "close"): "closed",
    ("assessed", "assess"): "assessed",
    ("assessed", "plan"): "in_plan",
    ("assessed", "close"): "closed",
    ("in_plan", "plan"): "in_plan",
    ("in_plan", "close"): "closed",
}


class TransitionRefused(Exception):
    """The action is not possible from the case's status."""

    def __init__(self, status: Status, action: Action) -> None:
        super().__init__(f"{action} is not possible on a case that is {status}")
        self.status = status
        self.action = action
        self.allowed = allowed_actions(status)


def allowed_actions(status: Status) -> list[Action]:
    return [action for (source, action) in TRANSITIONS if source == status]


def next_status(status: Status, action: Action) -> Status:
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise TransitionRefused(status, action) from None


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (the month's last day when it has no such day)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def follow_up_dates(return_date: date) -> dict[int, date]:
    return {months: add_months(return_date, months) for months in FOLLOW_UP_MONTHS}


def initial_status(origin: Origin, return_date: date | None) -> Status:
    """A case opened after the return (a return date given) is open; one opened before it
    (a declaration from abroad, a laissez-passer) waits for the returnee: declared."""
    return "open" if return_date is not None and origin == "case_worker" else "declared"


@dataclass(frozen=True)
class Sensitive:
    """The fields sealed at rest and shown only to the assigned case worker."""

    vulnerabilities: tuple[str, ...] = ()
    vulnerability_notes: str | None = None
    health_notes: str | None = None
    psychosocial_notes: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "vulnerabilities": list(self.vulnerabilities),
            "vulnerability_notes": self.vulnerability_notes,
            "health_notes": self.health_notes,
            "psychosocial_notes": self.psychosocial_notes,
        }

    @classmethod
    def of(cls, data: dict[str, object]) -> Sensitive:
        vulnerabilities = data.get("vulnerabilities") or []
        assert isinstance(vulnerabilities, list)
        return cls(
            vulnerabilities=tuple(str(v) for v in vulnerabilities),
            vulnerability_notes=_text(data.get("vulnerability_notes")),
            health_notes=_text(data.get("health_notes")),
            psychosocial_notes=_text(data.get("psychosocial_notes")),
        )

    def merged(self, **changes: object) -> Sensitive:
        values = self.as_dict()
        values.update({k: v for k, v in changes.items() if v is not None})
        return Sensitive.of(values)

    @property
    def empty(self) -> bool:
        return not any(self.as_dict().values())


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
