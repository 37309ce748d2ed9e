"""Slots computed from an embassy's template (appointments.domain): wall-clock opening
hours across both DST changes of Europe/Paris, closures, validity, the horizon, and what a
requested start must be to be booked."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from consular.appointments.domain import (
    Closure,
    Opening,
    Refused,
    Template,
    bookable_slot,
    slots_between,
    slots_of_day,
)


def template(**overrides: object) -> Template:
    values: dict[str, object] = {
        "embassy_id": "fr-paris",
        "timezone": "Europe/Paris",
        "slot_minutes": 30,
        "capacity": 4,
        "weekly_hours": {
            "mon": (Opening(time(9), time(12)), Opening(time(14), time(16))),
            "fri": (Opening(time(9), time(10)),),
            "sun": (Opening(time(1), time(4)),),
        },
        "closures": (Closure(date(2027, 3, 25), date(2027, 3, 25), "fête"),),
        "valid_from": date(2027, 1, 1),
        "valid_to": date(2027, 12, 31),
        "horizon_days": 400,
        **overrides,
    }
    return Template(**values)  # type: ignore[arg-type]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_same_local_hours_give_utc_times_an_hour_apart_across_the_spring_change() -> None:
    friday = [s.start for s in slots_of_day(template(), date(2027, 3, 26))]
    monday = [s.start for s in slots_of_day(template(), date(2027, 3, 29))]
    assert friday == [utc(2027, 3, 26, 8, 0), utc(2027, 3, 26, 8, 30)]  # 09:00 CET
    assert monday[0] == utc(2027, 3, 29, 7, 0)  # 09:00 CEST
    assert len(monday) == 6 + 4
    first = next(slots_of_day(template(), date(2027, 3, 29)))
    assert first.local_start.isoformat() == "2027-03-29T09:00:00+02:00"


def test_the_spring_forward_gap_has_no_slots() -> None:
    slots = list(slots_of_day(template(), date(2027, 3, 28)))
    assert [s.local_start.strftime("%H:%M%z") for s in slots] == [
        "01:00+0100",
        "01:30+0100",
        "03:00+0200",
        "03:30+0200",
    ]
    assert [s.start for s in slots] == [
        utc(2027, 3, 28, 0, 0),
        utc(2027, 3, 28, 0, 30),
        utc(2027, 3, 28, 1, 0),
        utc(2027, 3, 28, 1, 30),
    ]


def test_the_repeated_autumn_hour_gives_its_slots_once() -> None:
    slots = list(slots_of_day(template(), date(2027, 10, 31)))
    starts = [s.start for s in slots]
    assert len(starts) == len(set(starts)) == 6
    assert [s.local_start.strftime("%H:%M%z") for s in slots] == [
        "01:00+0200",
        "01:30+0200",
        "02:00+0200",
        "02:30+0200",
        "03:00+0100",
        "03:30+0100",
    ]
    assert starts[0] == utc(2027, 10, 30, 23, 0)
    assert starts[-1] == utc(2027, 10, 31, 2, 30)


def test_closures_validity_and_days_without_hours_have_no_slots() -> None:
    t = template()
    assert list(slots_of_day(t, date(2027, 3, 25))) == []  # closed (a Thursday anyway)
    closed_monday = template(closures=(Closure(date(2027, 3, 29), date(2027, 4, 5)),))
    assert list(slots_of_day(closed_monday, date(2027, 3, 29))) == []
    assert list(slots_of_day(closed_monday, date(2027, 4, 5))) == []
    assert len(list(slots_of_day(closed_monday, date(2027, 4, 12)))) == 10
    assert list(slots_of_day(t, date(2027, 3, 30))) == []  # Tuesday: no hours
    assert list(slots_of_day(t, date(2026, 12, 28))) == []  # before valid_from
    assert list(slots_of_day(t, date(2028, 1, 3))) == []  # after valid_to
    week = list(slots_between(t, date(2027, 3, 22), date(2027, 3, 28)))
    assert len(week) == 10 + 2 + 4


@pytest.mark.parametrize(
    ("start", "code"),
    [
        (utc(2027, 3, 1, 8, 0), "in_the_past"),
        (utc(2027, 3, 29, 7, 15), "not_a_slot"),
        (utc(2027, 3, 25, 8, 0), "closed"),
        (utc(2027, 6, 7, 7, 0), "beyond_horizon"),
        (datetime(2027, 3, 29, 9, 0), "naive_time"),
    ],
)
def test_a_start_that_is_not_a_bookable_slot_is_refused(start: datetime, code: str) -> None:
    now = utc(2027, 3, 20, 12, 0)
    with pytest.raises(Refused) as refused:
        bookable_slot(template(horizon_days=30), start, now)
    assert refused.value.code == code


def test_a_slot_start_given_in_any_offset_is_the_slot() -> None:
    now = utc(2027, 3, 20, 12, 0)
    lome = datetime(2027, 3, 29, 7, 0, tzinfo=ZoneInfo("Africa/Lome"))
    slot = bookable_slot(template(), lome, now)
    assert slot.start == utc(2027, 3, 29, 7, 0)
    assert slot.local_start.isoformat() == "2027-03-29T09:00:00+02:00"
    assert slot.end - slot.start == timedelta(minutes=30)
