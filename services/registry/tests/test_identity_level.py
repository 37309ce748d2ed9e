"""The identity level's rules (no database): strongest unexpired check, never lowered by a
weaker later one, lapsing with the document; and what evidence is refused."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from registry.identity.domain import Evidence, InvalidEvidence, check_evidence
from registry.members.identity_level import current_identity, summary_of

TODAY = date(2026, 12, 7)


def check(level: str, expires: date, at: datetime, document: str = "passport") -> dict[str, object]:
    return {
        "level": level,
        "method": "document_in_person" if level == "in_person" else "document_upload",
        "document_type": document,
        "verified_at": at,
        "embassy_id": "fr-paris",
        "expires_on": expires,
    }


def at(day: int) -> datetime:
    return datetime(2026, 12, day, 10, tzinfo=UTC)


def test_the_strongest_unexpired_check_is_the_level_and_a_weaker_later_one_keeps_it() -> None:
    seen = check("in_person", date(2030, 1, 1), at(1))
    later_upload = check("document_checked", date(2035, 1, 1), at(5), "national_id_card")
    summary = summary_of([seen, later_upload])
    level = current_identity(summary, TODAY)
    assert level is not None
    assert level["level"] == "in_person"
    assert level["expires_on"] == date(2030, 1, 1)
    assert level["verified_at"] == at(1)
    # The summary is JSON (the members column): it round-trips through strings.
    assert isinstance(summary, dict)
    assert summary["in_person"]["expires_on"] == "2030-01-01"


def test_the_level_lapses_with_the_document_down_to_a_weaker_check_still_valid() -> None:
    summary = summary_of(
        [
            check("in_person", date(2027, 1, 31), at(1)),
            check("document_checked", date(2029, 6, 30), at(2)),
        ]
    )
    on_expiry = current_identity(summary, date(2027, 1, 31))
    assert on_expiry is not None
    assert on_expiry["level"] == "in_person"
    after = current_identity(summary, date(2027, 2, 1))
    assert after is not None
    assert after["level"] == "document_checked"
    assert current_identity(summary, date(2029, 7, 1)) is None
    assert current_identity(None, TODAY) is None


def test_per_level_the_check_valid_longest_is_kept() -> None:
    summary = summary_of(
        [
            check("in_person", date(2031, 1, 1), at(1)),
            check("in_person", date(2028, 1, 1), at(6), "consular_card"),  # later, shorter
        ]
    )
    level = current_identity(summary, TODAY)
    assert level is not None
    assert (level["document_type"], level["expires_on"]) == ("passport", date(2031, 1, 1))
    assert summary_of([]) is None


def evidence(**changes: object) -> Evidence:
    values: dict[str, object] = {
        "method": "document_in_person",
        "document_type": "passport",
        "document_number": "TG1234567",
        "document_expires_on": TODAY + timedelta(days=1),
        "seen_on": TODAY,
    }
    values.update(changes)
    return Evidence(**values)  # type: ignore[arg-type]


def test_evidence_that_proves_nothing_today_is_refused_naming_the_field() -> None:
    check_evidence(evidence(), TODAY)
    check_evidence(evidence(document_expires_on=TODAY), TODAY)  # valid through today
    with pytest.raises(InvalidEvidence) as expired:
        check_evidence(evidence(document_expires_on=TODAY - timedelta(days=1)), TODAY)
    assert expired.value.field == "document_expires_on"
    with pytest.raises(InvalidEvidence) as future:
        check_evidence(evidence(seen_on=TODAY + timedelta(days=1)), TODAY)
    assert future.value.field == "seen_on"
    assert evidence(method="document_upload").level == "document_checked"
    assert evidence().level == "in_person"
