"""The referrals' status machine, SLA dates and partners' coverage, in plain Python."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from returnees.partners import domain as partners
from returnees.referrals import domain

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_the_partner_acknowledges_then_completes_or_refuses_and_the_cell_cancels() -> None:
    assert domain.allowed_actions("referred", "partner") == ["acknowledge", "refuse"]
    assert domain.allowed_actions("acknowledged", "partner") == ["complete", "refuse"]
    assert domain.allowed_actions("referred", "cell") == ["cancel"]
    assert domain.allowed_actions("acknowledged", "cell") == ["cancel"]
    for closed in ("done", "refused", "cancelled"):
        assert domain.allowed_actions(closed, "partner") == []
        assert domain.allowed_actions(closed, "cell") == []
    assert domain.transition("referred", "acknowledge", "partner", None).target == "acknowledged"
    assert domain.transition("acknowledged", "complete", "partner", None).target == "done"


def test_a_transition_not_allowed_names_the_allowed_ones() -> None:
    with pytest.raises(domain.IllegalTransition) as raised:
        domain.transition("referred", "complete", "partner", None)
    assert raised.value.allowed == ["acknowledge", "refuse"]
    assert "allowed now: acknowledge, refuse" in str(raised.value)
    with pytest.raises(domain.IllegalTransition) as by_cell:
        domain.transition("referred", "acknowledge", "cell", None)
    assert by_cell.value.allowed == ["cancel"]
    with pytest.raises(domain.IllegalTransition):
        domain.transition("referred", "escalate", "partner", None)


def test_refusing_and_cancelling_need_a_reason() -> None:
    for action, side in (("refuse", "partner"), ("cancel", "cell")):
        for reason in (None, "", "   "):
            with pytest.raises(domain.ReasonRequired):
                domain.transition("referred", action, side, reason)  # type: ignore[arg-type]
    assert domain.transition("referred", "refuse", "partner", "Full").target == "refused"


def test_deadlines_and_the_stage_overdue() -> None:
    due = domain.deadlines(NOW, acknowledge_days=3, complete_days=30)
    assert due.acknowledge_by == NOW + timedelta(days=3)
    assert due.complete_by == NOW + timedelta(days=30)
    at = NOW + timedelta(days=4)
    assert domain.overdue_stage("referred", due.acknowledge_by, due.complete_by, NOW) is None
    assert domain.overdue_stage("referred", due.acknowledge_by, due.complete_by, at) == (
        "acknowledge"
    )
    assert domain.overdue_stage("acknowledged", due.acknowledge_by, due.complete_by, at) is None
    later = NOW + timedelta(days=31)
    assert domain.overdue_stage("acknowledged", due.acknowledge_by, due.complete_by, later) == (
        "complete"
    )
    assert domain.overdue_stage("done", due.acknowledge_by, due.complete_by, later) is None


def test_coverage_by_region_or_prefecture_and_why_not() -> None:
    kwargs = {
        "name": "Savanes Accueil",
        "active": True,
        "services": ["reception", "housing"],
        "regions": ["TG-S"],
        "prefectures": ["kozah"],
    }
    partners.check_can_take(**kwargs, need="housing", prefecture="Tône")  # type: ignore[arg-type]
    partners.check_can_take(**kwargs, need="housing", prefecture="Kozah")  # type: ignore[arg-type]
    with pytest.raises(partners.NotCovered, match="does not cover the prefecture golfe"):
        partners.check_can_take(**kwargs, need="housing", prefecture="golfe")  # type: ignore[arg-type]
    with pytest.raises(partners.NotCovered, match="does not offer health"):
        partners.check_can_take(**kwargs, need="health", prefecture="kozah")  # type: ignore[arg-type]
    with pytest.raises(partners.NotCovered, match="inactive"):
        partners.check_can_take(  # type: ignore[arg-type]
            **{**kwargs, "active": False}, need="housing", prefecture="kozah"
        )


def test_places_are_named_by_code_name_or_slug() -> None:
    assert partners.region_codes(["Maritime", "tg-s", "Région des Plateaux"]) == [
        "TG-M",
        "TG-P",
        "TG-S",
    ]
    assert partners.prefecture_slugs(["Agoè-Nyivé", "agoe nyive", "golfe"]) == [
        "agoe-nyive",
        "golfe",
    ]
    with pytest.raises(partners.UnknownPlace):
        partners.region_codes(["Atlantis"])
    with pytest.raises(partners.UnknownPlace):
        partners.prefecture_slugs(["Paris"])
    assert len(partners.NEEDS) == 8
