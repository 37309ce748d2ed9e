"""How likely two member records are one person: a score in [0, 1] with its reasons.

The score adds the evidence of each attribute:

| evidence | weight |
|---|---|
| name similarity ``s`` (pg_trgm on the name keys, 1.0 when equal) | 0.5 * s |
| same date of birth | 0.3 |
| date of birth with day and month swapped | 0.2 |
| same phone number (E.164) | 0.25 |
| same email address (case ignored) | 0.35 |

capped at 1. With the default threshold of 0.6, a same-name-and-birth-date pair
is flagged (0.8), as is a near name (s ≥ 0.6) with the same birth date, or the
same name with a shared phone or email. A shared phone alone, even with the
family name (families share phones), or the same name alone (common names) is
not. An email weighs more than a phone: people share phones more than emails.
"""

from __future__ import annotations

from dataclasses import dataclass

NAME_WEIGHT = 0.5
BIRTH_DATE_WEIGHT = 0.3
SWAPPED_BIRTH_DATE_WEIGHT = 0.2
PHONE_WEIGHT = 0.25
EMAIL_WEIGHT = 0.35
DEFAULT_THRESHOLD = 0.6


@dataclass(frozen=True)
class Evidence:
    """What two records share."""

    name_similarity: float
    same_birth_date: bool = False
    swapped_birth_date: bool = False
    same_phone: bool = False
    same_email: bool = False


@dataclass(frozen=True)
class Match:
    score: float
    reasons: list[str]


def score(evidence: Evidence) -> Match:
    """The score and the reasons behind it, e.g. ``['name~0.92', 'date_of_birth']``."""
    total = NAME_WEIGHT * evidence.name_similarity
    reasons = [f"name~{evidence.name_similarity:.2f}"]
    if evidence.same_birth_date:
        total += BIRTH_DATE_WEIGHT
        reasons.append("date_of_birth")
    elif evidence.swapped_birth_date:
        total += SWAPPED_BIRTH_DATE_WEIGHT
        reasons.append("date_of_birth~day_month_swapped")
    if evidence.same_phone:
        total += PHONE_WEIGHT
        reasons.append("phone")
    if evidence.same_email:
        total += EMAIL_WEIGHT
        reasons.append("email")
    return Match(score=round(min(total, 1.0), 3), reasons=reasons)
