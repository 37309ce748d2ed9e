"""ISCO-08, the International Standard Classification of Occupations, in French and English.

Four levels, each code one digit longer than its parent: major group (1 digit),
sub-major (2), minor (3), unit group (4). Labels come from ESCO's ISCO-08 groups
(ESCO, © European Union; reuse authorised provided the source is acknowledged,
Commission Decision 2011/833/EU).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

from diaspora_reference._data import load_json_gz

Lang = Literal["fr", "en"]


@dataclass(frozen=True)
class IscoGroup:
    code: str
    level: int
    label_fr: str
    label_en: str
    parent: str | None

    def label(self, lang: Lang = "fr") -> str:
        return self.label_fr if lang == "fr" else self.label_en


@cache
def _groups() -> dict[str, IscoGroup]:
    data = load_json_gz("isco08.json.gz")
    return {
        code: IscoGroup(
            code=code,
            level=len(code),
            label_fr=fr,
            label_en=en,
            parent=code[:-1] if len(code) > 1 else None,
        )
        for code, fr, en in data["groups"]
    }


def group(code: str) -> IscoGroup | None:
    """The group with this code (1 to 4 digits), or None if ISCO-08 has no such group."""
    return _groups().get(code.strip()) if isinstance(code, str) else None


def is_valid(code: str) -> bool:
    return group(code) is not None


def ancestors(code: str) -> list[IscoGroup]:
    """The group's parents, from its major group down to its direct parent ([] if unknown)."""
    found = group(code)
    chain: list[IscoGroup] = []
    while found is not None and found.parent is not None:
        found = _groups()[found.parent]
        chain.append(found)
    return list(reversed(chain))


def label(code: str, lang: Lang = "fr") -> str | None:
    """The group's label in French (default) or English, or None if unknown."""
    found = group(code)
    return found.label(lang) if found else None


def groups(level: int | None = None) -> list[IscoGroup]:
    """Every group (or those of one level, 1 to 4), ordered by code."""
    return [g for g in _groups().values() if level is None or g.level == level]


def children(code: str) -> list[IscoGroup]:
    return [g for g in _groups().values() if g.parent == code]
