"""Why an expert ranks where they do, in words a coordinator reads (French or English).

Each reason names a component of the score, the points it brought (out of 100) and
what in the expert's profile earned them; the hard filters the expert passed are
reasons too (0 points: every candidate passes them).
"""

from __future__ import annotations

import gettext
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import pycountry

from diaspora_reference import isco
from matching.ranking.scoring import (
    EXPERIENCE_CAP_YEARS,
    OCCUPATION_LEVELS,
    WEIGHTS,
    Candidate,
    NeedQuery,
)

Lang = Literal["fr", "en"]

ISCED: dict[int, tuple[str, str]] = {
    0: ("éducation de la petite enfance", "early childhood education"),
    1: ("primaire", "primary education"),
    2: ("premier cycle du secondaire", "lower secondary"),
    3: ("second cycle du secondaire", "upper secondary"),
    4: ("post-secondaire non supérieur", "post-secondary non-tertiary"),
    5: ("supérieur de cycle court", "short-cycle tertiary"),
    6: ("licence ou équivalent", "bachelor's or equivalent"),
    7: ("master ou équivalent", "master's or equivalent"),
    8: ("doctorat ou équivalent", "doctoral or equivalent"),
}
MISSIONS: dict[str, tuple[str, str]] = {
    "teaching": ("d'enseignement", "teaching"),
    "medical": ("médicales", "medical"),
    "volunteering": ("de volontariat", "volunteering"),
    "co_development": ("de codéveloppement", "co-development"),
    "technical_assistance": ("d'assistance technique", "technical assistance"),
}


@dataclass(frozen=True)
class Reason:
    code: str
    text: str
    points: float


@cache
def _french_languages() -> gettext.NullTranslations:
    return gettext.translation("iso639-3", pycountry.LOCALES_DIR, languages=["fr"], fallback=True)


def language_name(code: str, lang: Lang) -> str:
    found = pycountry.languages.get(alpha_2=code)
    if found is None:
        return code
    name: str = found.name
    if lang == "fr":
        name = _french_languages().gettext(name).lower()
    return name


def _group(code: str, lang: Lang) -> str:
    label = isco.label(code, lang)
    return f"{code} {label}" if label else code


def _occupation(candidate: Candidate, need: NeedQuery, lang: Lang, points: float) -> Reason | None:
    value = candidate.components["occupation"]
    if value <= 0:
        return None
    expert = candidate.expert
    declared = list(expert["occupations"])
    worked = list(expert["experience_occupations"])
    sought = need.occupations

    def first(test: Any) -> tuple[str, bool] | None:
        for code in declared:
            if test(code):
                return code, True
        for code in worked:
            if test(code):
                return code, False
        return None

    if value >= OCCUPATION_LEVELS["exact"]:
        found = first(lambda c: any(c.startswith(s) for s in sought))
        level_fr, level_en, shown = "même groupe CITP", "same ISCO group", None
        if found is not None and len(found[0]) == 4:
            level_fr, level_en = "même groupe de base CITP", "same ISCO unit group"
            shown = found[0]
        elif found is not None:
            shown = next(s for s in sought if found[0].startswith(s))
    elif value >= OCCUPATION_LEVELS["minor"]:
        found = first(lambda c: any(len(s) == 4 and c[:3] == s[:3] for s in sought))
        level_fr, level_en = "même sous-groupe CITP", "same ISCO minor group"
        shown = found[0][:3] if found else None
    else:
        found = first(lambda c: any(len(s) >= 3 and c[:2] == s[:2] for s in sought))
        level_fr, level_en = "même sous-grand groupe CITP", "same ISCO sub-major group"
        shown = found[0][:2] if found else None
    if found is None or shown is None:
        return None
    code, is_declared = found
    text = f"{level_fr if lang == 'fr' else level_en} {_group(shown, lang)}"
    if code != shown:
        text += f" ({_group(code, lang)})"
    if not is_declared:
        text += " — par son expérience" if lang == "fr" else " — from work experience"
    return Reason("occupation", text, points)


def _skills(candidate: Candidate, need: NeedQuery, lang: Lang, points: float) -> Reason | None:
    if not need.skills:
        return None
    matched = [s.label for s, hit in zip(need.skills, candidate.skill_hits, strict=True) if hit > 0]
    missing = [
        s.label for s, hit in zip(need.skills, candidate.skill_hits, strict=True) if hit <= 0
    ]
    total = len(need.skills)
    if lang == "fr":
        text = f"{len(matched)} compétence(s) demandée(s) sur {total}"
        if matched:
            text += " : " + ", ".join(matched)
        if missing:
            text += " ; manque : " + ", ".join(missing)
    else:
        text = f"{len(matched)} of {total} required skills"
        if matched:
            text += ": " + ", ".join(matched)
        if missing:
            text += "; missing: " + ", ".join(missing)
    return Reason("skills", text, points)


def _experience(candidate: Candidate, lang: Lang, points: float) -> Reason | None:
    years = candidate.experience_years
    if years <= 0:
        return None
    shown = f"{years:g}"
    if lang == "fr":
        text = f"{shown} an(s) d'expérience dans des métiers proches"
    else:
        text = f"{shown} year(s) of experience in related occupations"
    if years > EXPERIENCE_CAP_YEARS:
        text += (
            f" (compté jusqu'à {EXPERIENCE_CAP_YEARS})"
            if lang == "fr"
            else f" (counted up to {EXPERIENCE_CAP_YEARS})"
        )
    return Reason("experience", text, points)


def _education(candidate: Candidate, need: NeedQuery, lang: Lang, points: float) -> Reason | None:
    level = candidate.expert["max_isced_level"]
    if level is None:
        return None
    name = ISCED.get(level, (str(level), str(level)))[0 if lang == "fr" else 1]
    text = f"CITE {level} ({name})" if lang == "fr" else f"ISCED {level} ({name})"
    if need.min_isced_level is not None:
        text += (
            f", niveau requis {need.min_isced_level} atteint"
            if lang == "fr"
            else f", meets the required level {need.min_isced_level}"
        )
    return Reason("education", text, points)


def _text(candidate: Candidate, lang: Lang, points: float) -> Reason | None:
    if candidate.components["text"] <= 0 or not candidate.matched_terms:
        return None
    # French and English stems of one word ("pedagog", "pedagogi"): show the longer.
    found = candidate.matched_terms
    kept = [t for t in found if not any(o != t and o.startswith(t) for o in found)]
    terms = ", ".join(kept[:8])
    text = (
        f"mots en commun avec la description : {terms}"
        if lang == "fr"
        else f"words in common with the description: {terms}"
    )
    return Reason("text", text, points)


def _filters(candidate: Candidate, need: NeedQuery, lang: Lang) -> list[Reason]:
    found = []
    if need.languages:
        names = ", ".join(language_name(code, lang) for code in need.languages)
        found.append(
            Reason("languages", f"parle {names}" if lang == "fr" else f"speaks {names}", 0)
        )
    mission = MISSIONS.get(need.type, (need.type, need.type))
    expert = candidate.expert
    if lang == "fr":
        text = f"disponible pour des missions {mission[0]}"
    else:
        text = f"available for {mission[1]} missions"
    if expert["available_from"] or expert["available_until"]:
        start = expert["available_from"].isoformat() if expert["available_from"] else "…"
        end = expert["available_until"].isoformat() if expert["available_until"] else "…"
        text += f" (du {start} au {end})" if lang == "fr" else f" (from {start} to {end})"
    if need.work_mode == "remote":
        text += ", à distance" if lang == "fr" else ", remotely"
    found.append(Reason("availability", text, 0))
    return found


def reasons(candidate: Candidate, need: NeedQuery, lang: Lang = "fr") -> list[Reason]:
    """The reasons behind a candidate's score, biggest contribution first."""
    applicable = dict(WEIGHTS)
    if not need.occupations:
        applicable.pop("occupation")
        applicable.pop("experience")
    if not need.skills:
        applicable.pop("skills")
    total = sum(applicable.values())

    def points(name: str) -> float:
        if name not in applicable:
            return 0.0
        return round(100 * applicable[name] / total * candidate.components[name], 2)

    found = [
        _occupation(candidate, need, lang, points("occupation")),
        _skills(candidate, need, lang, points("skills")),
        _experience(candidate, lang, points("experience")),
        _text(candidate, lang, points("text")),
        _education(candidate, need, lang, points("education")),
    ]
    scored = sorted((r for r in found if r is not None), key=lambda r: -r.points)
    return scored + _filters(candidate, need, lang)
