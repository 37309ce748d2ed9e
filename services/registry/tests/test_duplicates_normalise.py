"""Name keys and scores of duplicate detection (pure functions)."""

from __future__ import annotations

from datetime import date

import pytest

from registry.duplicates.normalise import email_key, name_key, swapped_day_month
from registry.duplicates.scoring import DEFAULT_THRESHOLD, Evidence, score


@pytest.mark.parametrize(
    ("given", "family"),
    [
        ("Kɔkú", "AGBÉKO-Mensah"),
        ("koku", "agbeko mensah"),
        ("Mensah", "Koku Agbeko"),  # given and family names swapped
        ("  Kokú ", "Agbeko\u2013Mensah"),  # en dash, spaces
        ("Koku", "Agbéko Mensah"),
    ],
)
def test_spellings_of_one_name_give_one_key(given: str, family: str) -> None:
    assert name_key(given, family) == "agbeko koku mensah"


def test_transliteration_and_punctuation() -> None:
    assert name_key("Ɖoɖo", "Ŋɔtsɛ") == "dodo ngotse"
    assert name_key("Jean-Noël", "N\u2019Guessan") == name_key("Jean Noel", "Nguessan")
    assert name_key("Юлия", "Ковальчук") == "kovalchuk yuliya"
    assert email_key(" Ama.Mensah@Example.ORG ") == "ama.mensah@example.org"


def test_swapped_day_and_month() -> None:
    assert swapped_day_month(date(1990, 4, 7)) == date(1990, 7, 4)
    assert swapped_day_month(date(1990, 4, 27)) is None
    assert swapped_day_month(date(1990, 5, 5)) is None


def test_scores_flag_what_officers_should_see_and_nothing_else() -> None:
    def flagged(**evidence: object) -> bool:
        return score(Evidence(**evidence)).score >= DEFAULT_THRESHOLD  # type: ignore[arg-type]

    # Same person re-registered (accents aside): same name key and birth date.
    assert flagged(name_similarity=1.0, same_birth_date=True)
    assert flagged(name_similarity=0.65, same_birth_date=True)  # Kossi / Kosi
    assert flagged(name_similarity=1.0, same_phone=True)  # birth date typed wrong
    assert flagged(name_similarity=0.9, swapped_birth_date=True)
    assert flagged(name_similarity=0.1, same_phone=True, same_email=True)
    # Families share phones; namesakes are common.
    assert not flagged(name_similarity=0.3, same_phone=True)
    assert not flagged(name_similarity=1.0)
    assert not flagged(name_similarity=0.4, same_birth_date=True)
    match = score(Evidence(name_similarity=0.92, same_birth_date=True, same_email=True))
    assert match.reasons == ["name~0.92", "date_of_birth", "email"]
    assert match.score == 1.0
