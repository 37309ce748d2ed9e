"""The rules in plain Python: the state machine, answers against a form, eligibility."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from consular.applications import domain
from consular.catalogue.domain import (
    ApplicantFacts,
    FormField,
    Labels,
    Processing,
    eligibility_refusal,
    processing_embassy,
    validate_answers,
)

L = Labels(fr="x", en="x")
FORM = [
    FormField(name="address", type="text", labels=L),
    FormField(name="notes", type="long_text", required=False, labels=L),
    FormField(name="born", type="date", labels=L),
    FormField(name="height", type="number", required=False, labels=L),
    FormField(name="kind", type="choice", options=["first", "renewal"], labels=L),
    FormField(name="country", type="country", required=False, labels=L),
    FormField(name="mail", type="email", required=False, labels=L),
    FormField(name="agreed", type="boolean", required=False, labels=L),
]


def fields(errors: list[object]) -> dict[str, str]:
    return {e.field: e.code for e in errors}  # type: ignore[attr-defined]


def test_every_status_has_exactly_the_transitions_of_the_issue() -> None:
    assert domain.allowed_actions("draft", "applicant") == ["submit", "withdraw"]
    assert domain.allowed_actions("submitted", "embassy_officer") == [
        "start_review",
        "request_information",
    ]
    assert domain.allowed_actions("under_review", "embassy_officer") == [
        "request_information",
        "approve",
        "reject",
    ]
    assert domain.allowed_actions("information_requested", "applicant") == [
        "resubmit",
        "withdraw",
    ]
    assert domain.allowed_actions("approved", "applicant") == []
    assert domain.allowed_actions("approved", "embassy_officer") == ["issue"]
    assert domain.allowed_actions("issued") == ["mark_collected"]
    for final in domain.FINAL:
        assert domain.allowed_actions(final) == []
    with pytest.raises(domain.IllegalTransition) as refused:
        domain.transition("approved", "reject", "embassy_officer", "late")
    assert refused.value.allowed == ["issue"]
    # An action of the other side is not allowed either (whatever the status).
    with pytest.raises(domain.IllegalTransition):
        domain.transition("under_review", "approve", "applicant", None)
    with pytest.raises(domain.ReasonRequired):
        domain.transition("under_review", "reject", "embassy_officer", "  ")
    assert domain.transition("under_review", "approve", "embassy_officer", None).target == (
        "approved"
    )


def test_overdue_only_while_the_embassy_is_to_act() -> None:
    past = datetime(2026, 1, 1, tzinfo=UTC)
    now = datetime(2026, 2, 1, tzinfo=UTC)
    assert domain.is_overdue("under_review", past, now)
    assert not domain.is_overdue("information_requested", past, now)
    assert not domain.is_overdue("approved", past, now)
    assert not domain.is_overdue("submitted", now, past)


def test_a_reference_names_the_type_and_year() -> None:
    at = datetime(2026, 12, 7, tzinfo=UTC)
    app = UUID("3f9a1c07-b2aa-4e2b-8c1d-000000000000")
    assert domain.decision_reference("e_visa", app, at) == "EV-2026-3F9A1C07B2"
    assert domain.decision_reference("consular_card", app, at).startswith("CC-2026-")


def test_answers_are_checked_field_by_field() -> None:
    good = {"address": "12 rue X", "born": "1990-04-27", "kind": "first"}
    assert validate_answers(FORM, good, complete=True) == []
    assert fields(validate_answers(FORM, {}, complete=True)) == {
        "answers.address": "missing",
        "answers.born": "missing",
        "answers.kind": "missing",
    }
    assert validate_answers(FORM, {}, complete=False) == []
    bad = {
        "address": "line\r\nBcc: x@example.org",
        "notes": "two\nlines\tfine",
        "born": "1990-02-30",
        "height": True,
        "kind": "third",
        "country": "France",
        "mail": "nope",
        "agreed": "yes",
        "extra": 1,
    }
    assert fields(validate_answers(FORM, bad, complete=False)) == {
        "answers.address": "invalid",
        "answers.born": "invalid",
        "answers.height": "invalid",
        "answers.kind": "invalid",
        "answers.country": "invalid",
        "answers.mail": "invalid",
        "answers.agreed": "invalid",
        "answers.extra": "unknown_field",
    }
    nul = validate_answers(FORM, {"notes": "a\x00b"}, complete=False)
    assert fields(nul) == {"answers.notes": "invalid"}
    assert "U+0000" in nul[0].message


def test_eligibility_rules() -> None:
    visitor = ApplicantFacts(registered=False, identity_verified=False, embassy_id=None)
    member = ApplicantFacts(registered=True, identity_verified=False, embassy_id="fr-paris")
    verified = ApplicantFacts(registered=True, identity_verified=True, embassy_id="fr-paris")
    assert eligibility_refusal("none", visitor, "tg-lome") is None
    refusal = eligibility_refusal("registered_member", visitor, None)
    assert refusal is not None
    assert refusal.code == "not_registered"
    assert eligibility_refusal("registered_member", member, "fr-paris") is None
    rule = "verified_identity_in_jurisdiction"
    refusal = eligibility_refusal(rule, member, "fr-paris")
    assert refusal is not None
    assert refusal.code == "identity_not_verified"
    assert eligibility_refusal(rule, verified, "fr-paris") is None
    refusal = eligibility_refusal(rule, verified, "de-berlin")
    assert refusal is not None
    assert refusal.code == "outside_jurisdiction"
    fixed = Processing(rule="fixed_embassy", embassy_id="tg-lome")
    assert processing_embassy(fixed, "fr-paris") == "tg-lome"
    assert processing_embassy(Processing(rule="applicant_embassy"), "fr-paris") == "fr-paris"
    with pytest.raises(ValueError, match="fixed_embassy"):
        Processing(rule="fixed_embassy")
