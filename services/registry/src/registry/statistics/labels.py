"""Labels of statistics keys, in French (default) or English."""

from __future__ import annotations

import gettext
from functools import cache
from typing import Literal

import pycountry

from diaspora_reference import esco, isco
from registry.statistics.facts import NONE, UNKNOWN

Lang = Literal["fr", "en"]

ISCED = {
    "0": ("Éducation de la petite enfance", "Early childhood education"),
    "1": ("Enseignement primaire", "Primary education"),
    "2": ("Premier cycle du secondaire", "Lower secondary education"),
    "3": ("Deuxième cycle du secondaire", "Upper secondary education"),
    "4": ("Post-secondaire non supérieur", "Post-secondary non-tertiary education"),
    "5": ("Enseignement supérieur de cycle court", "Short-cycle tertiary education"),
    "6": ("Licence ou équivalent", "Bachelor's or equivalent"),
    "7": ("Master ou équivalent", "Master's or equivalent"),
    "8": ("Doctorat ou équivalent", "Doctoral or equivalent"),
    UNKNOWN: ("Non renseigné", "Not given"),
}
SEX = {
    "female": ("Femmes", "Women"),
    "male": ("Hommes", "Men"),
    "other": ("Autre", "Other"),
    "unspecified": ("Non précisé", "Not given"),
}
OTHER = {
    NONE: ("Aucune profession déclarée", "No occupation given"),
    UNKNOWN: ("Non renseigné", "Not given"),
}


@cache
def _translation(domain: str, lang: Lang) -> gettext.NullTranslations:
    if lang == "en":
        return gettext.NullTranslations()
    return gettext.translation(domain, pycountry.LOCALES_DIR, languages=[lang], fallback=True)


def country_name(code: str, lang: Lang = "fr") -> str:
    found = pycountry.countries.get(alpha_2=code)
    if found is None:
        return code
    return _translation("iso3166-1", lang).gettext(found.name)


def language_name(code: str, lang: Lang = "fr") -> str:
    found = pycountry.languages.get(alpha_2=code)
    if found is None:
        return code
    return _translation("iso639-3", lang).gettext(found.name)


def label(dimension: str, key: str, lang: Lang = "fr", stored: str | None = None) -> str:
    """What a person reads for ``key`` of ``dimension``."""
    pick = 0 if lang == "fr" else 1
    if key in OTHER and dimension not in ("sex", "education"):
        return OTHER[key][pick]
    if dimension == "country":
        return country_name(key, lang)
    if dimension in ("occupation", "occupation_submajor"):
        return isco.label(key, lang) or key
    if dimension == "education":
        return ISCED.get(key, (key, key))[pick]
    if dimension == "sex":
        return SEX.get(key, (key, key))[pick]
    if dimension == "language":
        return language_name(key, lang)
    if dimension == "skill":
        found = esco.skill(key) if key.startswith(esco.SKILL_PREFIX) else None
        if found is not None:
            return found.label(lang)
    return stored or key
