"""The difficulty reports' status machine and SLA, in plain Python."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from consular.reports import domain


def test_each_side_is_offered_only_its_own_actions() -> None:
    assert domain.allowed_actions("open", "staff") == ["start", "request_information", "resolve"]
    assert domain.allowed_actions("open", "reporter") == ["withdraw"]
    assert domain.allowed_actions("resolved", "reporter") == ["reopen", "close"]
    assert domain.allowed_actions("closed", "staff") == []


def test_a_transition_from_the_wrong_status_names_the_allowed_ones() -> None:
    with pytest.raises(domain.IllegalTransition) as refused:
        domain.transition("waiting_for_reporter", "start", "staff", None)
    assert refused.value.allowed == ["resume", "resolve"]
    with pytest.raises(domain.IllegalTransition):
        domain.transition("open", "withdraw", "staff", None)  # the reporter's only


def test_resolving_and_asking_need_a_reason() -> None:
    with pytest.raises(domain.ReasonRequired):
        domain.transition("in_progress", "resolve", "staff", "  ")
    assert domain.transition("in_progress", "resolve", "staff", "done").target == "resolved"


def test_the_clock_stops_while_the_reporter_is_waited_for() -> None:
    filed = datetime(2026, 12, 1, tzinfo=UTC)
    due = domain.due_at(filed, 2)
    later = filed + timedelta(days=3)
    assert domain.is_overdue("open", due, later)
    assert domain.is_overdue("in_progress", due, later)
    assert not domain.is_overdue("waiting_for_reporter", due, later)
    assert not domain.is_overdue("resolved", due, later)
    assert not domain.is_overdue("open", due, filed + timedelta(days=1))
    assert domain.month_of(filed) == "2026-12"
