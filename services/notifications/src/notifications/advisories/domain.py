"""Advisories in plain Python: the country's name in the reader's language, the text."""

from __future__ import annotations

from babel import Locale


def country_name(country: str, language: str) -> str:
    """The country's name in ``language`` (Babel's CLDR data), else its code."""
    try:
        names = Locale.parse(language).territories
    except Exception:  # an unknown language: the code
        return country
    return str(names.get(country.upper(), country.upper()))


def in_language(language: str, fr: str, en: str) -> str:
    """The French or English text of an advisory for a template rendered in ``language``."""
    return en if language == "en" else fr
