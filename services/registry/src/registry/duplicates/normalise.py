"""What two records of one person have in common once spelling is set aside.

Names are compared on a *name key*: every character transliterated to ASCII
(accents dropped, Ewe letters such as ɔ, ɛ, ɖ, ŋ mapped to o, e, d, ng), case
folded, hyphens made word breaks, apostrophes dropped, anything else non-alphanumeric
removed, and the words sorted, so that given and family names written in
another order or with another punctuation give the same key. PostgreSQL's
``pg_trgm`` similarity on these keys then measures the remaining spelling
differences (Kossi / Kosi, Mensah / Mensa).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from anyascii import anyascii

# Hyphens and dashes of every kind, dots, commas, slashes: word breaks. Apostrophes are
# dropped instead (N'Guessan is also written Nguessan; transliteration writes soft signs so).
_BREAKS = re.compile("[-\u2010-\u2015_.,/]+")
_NOT_WORD = re.compile(r"[^a-z0-9 ]+")


def name_words(*parts: str) -> list[str]:
    """The words of a name, transliterated, case folded and sorted."""
    text = unicodedata.normalize("NFKC", " ".join(parts))
    text = anyascii(text).casefold()
    text = _BREAKS.sub(" ", text)
    text = _NOT_WORD.sub("", text)
    return sorted(w for w in text.split() if w)


def name_key(given_name: str, family_name: str) -> str:
    """``"Kɔkú AGBÉKO-Mensah"`` and ``"mensah agbeko koku"`` give the same key."""
    return " ".join(name_words(given_name, family_name))


def email_key(email: str) -> str:
    """Email addresses compare case-insensitively (in practice, providers ignore case)."""
    return email.strip().casefold()


def swapped_day_month(value: date) -> date | None:
    """The date with day and month swapped (a common data-entry slip), if it is another date."""
    if value.day == value.month or value.day > 12:
        return None
    return value.replace(month=value.day, day=value.month)
