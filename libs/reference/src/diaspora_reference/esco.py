"""ESCO occupations and skills (European Skills, Competences, Qualifications and Occupations).

Each occupation belongs to one ISCO-08 unit group; skills are the controlled
vocabulary of the registry's profiles (a person may also write a skill in free
text). French and English labels, alternative labels, no descriptions.
ESCO, © European Union; reuse authorised provided the source is acknowledged
(Commission Decision 2011/833/EU).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

from diaspora_reference._data import fold, load_json_gz

Lang = Literal["fr", "en"]
OCCUPATION_PREFIX = "http://data.europa.eu/esco/occupation/"
SKILL_PREFIX = "http://data.europa.eu/esco/skill/"


@dataclass(frozen=True)
class Occupation:
    uri: str
    isco_code: str
    label_fr: str
    label_en: str
    alt_labels_fr: tuple[str, ...] = field(default=(), repr=False)
    alt_labels_en: tuple[str, ...] = field(default=(), repr=False)

    def label(self, lang: Lang = "fr") -> str:
        return self.label_fr if lang == "fr" else self.label_en


@dataclass(frozen=True)
class Skill:
    uri: str
    label_fr: str
    label_en: str
    kind: Literal["skill", "knowledge"] = "skill"
    alt_labels_fr: tuple[str, ...] = field(default=(), repr=False)
    alt_labels_en: tuple[str, ...] = field(default=(), repr=False)

    def label(self, lang: Lang = "fr") -> str:
        return self.label_fr if lang == "fr" else self.label_en


@dataclass(frozen=True)
class _Entry:
    """One searchable label: folded text, whether it is a preferred label, the concept."""

    text: str
    preferred: bool
    uri: str


@cache
def _occupations() -> dict[str, Occupation]:
    data = load_json_gz("esco_occupations.json.gz")
    prefix = data["prefix"]
    return {
        prefix + uid: Occupation(prefix + uid, isco, fr, en, tuple(afr), tuple(aen))
        for uid, isco, fr, en, afr, aen in data["occupations"]
    }


@cache
def _by_isco() -> dict[str, list[Occupation]]:
    index: dict[str, list[Occupation]] = defaultdict(list)
    for occupation in _occupations().values():
        index[occupation.isco_code].append(occupation)
    return dict(index)


@cache
def _skills() -> dict[str, Skill]:
    data = load_json_gz("esco_skills.json.gz")
    prefix = data["prefix"]
    return {
        prefix + uid: Skill(prefix + uid, fr, en, kind, tuple(afr), tuple(aen))
        for uid, kind, fr, en, afr, aen in data["skills"]
    }


def occupation(uri: str) -> Occupation | None:
    """The ESCO occupation with this URI, or None."""
    return _occupations().get(uri.strip()) if isinstance(uri, str) else None


def occupations_for_isco(code: str) -> list[Occupation]:
    """The ESCO occupations of an ISCO-08 group (a unit group, or every unit group under
    a coarser one), ordered by URI."""
    code = code.strip()
    if len(code) == 4:
        return sorted(_by_isco().get(code, []), key=lambda o: o.uri)
    return sorted(
        (o for unit, found in _by_isco().items() if unit.startswith(code) for o in found),
        key=lambda o: o.uri,
    )


def skill(uri: str) -> Skill | None:
    """The ESCO skill (or knowledge concept) with this URI, or None."""
    return _skills().get(uri.strip()) if isinstance(uri, str) else None


@cache
def _index(kind: Literal["skill", "occupation"], lang: Lang) -> tuple[_Entry, ...]:
    concepts: list[Skill] | list[Occupation] = (
        list(_skills().values()) if kind == "skill" else list(_occupations().values())
    )
    entries: list[_Entry] = []
    for concept in concepts:
        preferred = concept.label_fr if lang == "fr" else concept.label_en
        alts = concept.alt_labels_fr if lang == "fr" else concept.alt_labels_en
        entries.append(_Entry(fold(preferred), True, concept.uri))
        entries.extend(_Entry(fold(a), False, concept.uri) for a in alts)
    return tuple(entries)


def _find(kind: Literal["skill", "occupation"], text: str, lang: Lang, limit: int) -> list[str]:
    words = fold(text).split()
    if not words or limit <= 0:
        return []
    phrase = " ".join(words)
    best: dict[str, tuple[int, int, str]] = {}
    for entry in _index(kind, lang):
        label_words = entry.text.split()
        # Every word of the query must start a word of the label ("gest proj" finds
        # "gestion de projet").
        if not all(any(lw.startswith(w) for lw in label_words) for w in words):
            continue
        if entry.text == phrase:
            rank = 0
        elif entry.text.startswith(phrase):
            rank = 1
        else:
            rank = 2
        rank = rank * 2 + (0 if entry.preferred else 1)
        key = (rank, len(entry.text), entry.text)
        if entry.uri not in best or key < best[entry.uri]:
            best[entry.uri] = key
    return [uri for uri, _ in sorted(best.items(), key=lambda item: item[1])[:limit]]


def find_skills(text: str, lang: Lang = "fr", limit: int = 10) -> list[Skill]:
    """Skills whose label (preferred or alternative) has a word starting with each word
    of ``text``, accents and case ignored; exact and prefix matches first, then shorter."""
    skills = _skills()
    return [skills[uri] for uri in _find("skill", text, lang, limit)]


def find_occupations(text: str, lang: Lang = "fr", limit: int = 10) -> list[Occupation]:
    """Occupations matched like :func:`find_skills`."""
    occupations = _occupations()
    return [occupations[uri] for uri in _find("occupation", text, lang, limit)]
