"""Appointments' rules in plain Python: an embassy's slot template (weekly opening hours in
its own time zone, slot length, capacity per slot, closures, validity), the slots it
gives for a range of dates, and whether a requested start is a bookable slot.

Slots are never stored ahead: they are computed from the template on demand (a fresh
deployment has slots as soon as an embassy publishes its template, with no batch job).
Times are kept in UTC; local wall-clock times are turned into instants with zoneinfo, so
a day on which the clocks change has the slots its wall-clock hours give (a slot whose
local start does not exist, in the spring-forward gap, is skipped; one whose local start
occurs twice, in the autumn fall-back, is the first of the two).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Reminders: ``consular.appointment.reminder-due`` this long before the slot.
REMINDER_LEAD = timedelta(hours=24)

# An application may hold an appointment while it is being processed or waits to be
# handed over; not as a draft (no embassy yet) nor once it is closed.
BOOKABLE_STATUSES: tuple[str, ...] = (
    "submitted",
    "under_review",
    "information_requested",
    "resubmitted",
    "approved",
    "issued",
)


@dataclass(frozen=True)
class Opening:
    start: time
    end: time


@dataclass(frozen=True)
class Closure:
    start: date
    end: date
    label: str = ""

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class Template:
    embassy_id: str
    timezone: str
    slot_minutes: int
    capacity: int
    weekly_hours: dict[str, tuple[Opening, ...]]
    closures: tuple[Closure, ...]
    valid_from: date
    valid_to: date | None
    horizon_days: int

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Slot:
    start: datetime  # UTC
    end: datetime  # UTC
    local_start: datetime  # in the embassy's zone
    local_end: datetime


class Refused(Exception):
    """A start that cannot be booked (422): ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _exists(local: datetime, zone: ZoneInfo) -> bool:
    """Whether a naive wall-clock time exists in ``zone`` (not in a spring-forward gap)."""
    aware = local.replace(tzinfo=zone)
    back = aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    return back == local


def slots_of_day(template: Template, day: date) -> Iterator[Slot]:
    """The slots of one local date (none on a closed day, outside validity or a day without
    opening hours), in order."""
    if day < template.valid_from or (template.valid_to is not None and day > template.valid_to):
        return
    if any(c.covers(day) for c in template.closures):
        return
    zone = template.zone
    length = timedelta(minutes=template.slot_minutes)
    for opening in template.weekly_hours.get(WEEKDAYS[day.weekday()], ()):
        local = datetime.combine(day, opening.start)
        close = datetime.combine(day, opening.end)
        while local + length <= close:
            if _exists(local, zone):
                start = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
                end = start + length
                yield Slot(
                    start=start,
                    end=end,
                    local_start=start.astimezone(zone),
                    local_end=end.astimezone(zone),
                )
            local += length


def horizon_end(template: Template, now: datetime) -> date:
    """The last local date that may be booked now."""
    today = now.astimezone(template.zone).date()
    last = today + timedelta(days=template.horizon_days)
    if template.valid_to is not None:
        last = min(last, template.valid_to)
    return last


def slots_between(template: Template, first: date, last: date) -> Iterator[Slot]:
    day = first
    while day <= last:
        yield from slots_of_day(template, day)
        day += timedelta(days=1)


def bookable_slot(template: Template, start: datetime, now: datetime) -> Slot:
    """The slot that begins at ``start`` if it can be booked now; otherwise Refused."""
    if start.tzinfo is None:
        raise Refused("naive_time", "the start must carry a UTC offset")
    start = start.astimezone(UTC)
    if start <= now:
        raise Refused("in_the_past", "this slot has already begun")
    day = start.astimezone(template.zone).date()
    if day > horizon_end(template, now):
        raise Refused(
            "beyond_horizon",
            f"bookings open {template.horizon_days} days ahead, within the template's validity",
        )
    if day < template.valid_from:
        raise Refused("not_open", f"the embassy's slots begin on {template.valid_from}")
    closure = next((c for c in template.closures if c.covers(day)), None)
    if closure is not None:
        label = f" ({closure.label})" if closure.label else ""
        raise Refused("closed", f"the embassy is closed on {day}{label}")
    for slot in slots_of_day(template, day):
        if slot.start == start:
            return slot
    raise Refused("not_a_slot", "no slot begins at this time (see the embassy's slots)")
