"""The columns an embassy list may have, in French or English, and how a cell becomes a value.

Headers are matched after folding: accents dropped, case ignored, anything that
is not a letter or a digit read as ``_`` (so ``Date de naissance``,
``DATE_DE_NAISSANCE`` and ``date-de-naissance`` are one column). The table
:data:`COLUMNS` is the documented mapping (docs/registry.md, "Import").

Conversions here only turn what spreadsheets hold into what the registration
form takes (``27/04/1990`` into a date, ``France`` into ``FR``, ``Femme`` into
``female``); every value is then checked by the registration's own validation.
"""

from __future__ import annotations

import gettext
import re
from dataclasses import dataclass
from datetime import date
from functools import cache

import pycountry
from anyascii import anyascii


@dataclass(frozen=True)
class Column:
    field: str
    required: bool
    aliases: tuple[str, ...]
    description: str


COLUMNS: tuple[Column, ...] = (
    Column(
        "family_name",
        True,
        ("nom", "nom_de_famille", "nom_famille", "family_name", "last_name", "surname", "lastname"),
        "Family name.",
    ),
    Column(
        "given_name",
        True,
        ("prenom", "prenoms", "prenom_s", "given_name", "given_names", "first_name", "firstname"),
        "Given name(s).",
    ),
    Column(
        "date_of_birth",
        True,
        (
            "date_de_naissance",
            "date_naissance",
            "ne_le",
            "nee_le",
            "ne_e_le",
            "date_of_birth",
            "birth_date",
            "birthdate",
            "dob",
        ),
        "YYYY-MM-DD, or DD/MM/YYYY (also with - or .), or a date cell in XLSX.",
    ),
    Column(
        "country_of_residence",
        True,
        (
            "pays",
            "pays_de_residence",
            "pays_residence",
            "country",
            "country_of_residence",
            "residence_country",
        ),
        "ISO 3166-1 alpha-2 or alpha-3 code, or the country's name in French or English.",
    ),
    Column(
        "email",
        True,
        ("email", "e_mail", "courriel", "mail", "adresse_email", "adresse_electronique"),
        "Email address.",
    ),
    Column(
        "phone",
        True,
        (
            "telephone",
            "tel",
            "phone",
            "phone_number",
            "numero_de_telephone",
            "mobile",
            "portable",
        ),
        "International form, +country code (+33 6 12 34 56 78, 0033... is read as +33...).",
    ),
    Column(
        "preferred_language",
        False,
        ("langue", "langue_preferee", "preferred_language", "language"),
        "fr or en (français, anglais, French, English); fr when empty.",
    ),
    Column(
        "sex",
        False,
        ("sexe", "genre", "sex", "gender"),
        "F / M, femme / homme, female / male, autre / other; unspecified when empty.",
    ),
    Column("city", False, ("ville", "ville_de_residence", "city"), "City of residence."),
)
BY_FIELD = {c.field: c for c in COLUMNS}
REQUIRED = tuple(c.field for c in COLUMNS if c.required)


def fold_header(header: str) -> str:
    text = anyascii(header).casefold()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


_ALIASES = {alias: c.field for c in COLUMNS for alias in c.aliases}


@dataclass(frozen=True)
class Layout:
    """Which cell of a record holds which field."""

    positions: dict[str, int]
    ignored: tuple[str, ...]
    width: int

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(f for f in REQUIRED if f not in self.positions)

    def column_of(self, field: str) -> str:
        """The header of the file's column holding ``field`` (for error reports)."""
        return self.headers[self.positions[field]] if field in self.positions else field

    headers: tuple[str, ...] = ()


class DuplicateColumn(ValueError):
    pass


def layout(header: tuple[str, ...]) -> Layout:
    """Map the file's header onto fields; unknown columns are listed as ignored."""
    positions: dict[str, int] = {}
    ignored: list[str] = []
    for index, name in enumerate(header):
        field = _ALIASES.get(fold_header(name))
        if field is None:
            if name:
                ignored.append(name)
            continue
        if field in positions:
            raise DuplicateColumn(
                f"columns {header[positions[field]]!r} and {name!r} both give {field}"
            )
        positions[field] = index
    return Layout(positions, tuple(ignored), len(header), header)


# -- cell conversions (raise ValueError with a message that never repeats the value) --------

_DMY = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ]00:00(?::00)?)?$")


def parse_date(text: str) -> date:
    iso = _ISO.match(text)
    dmy = None if iso else _DMY.match(text)
    try:
        if iso:
            return date(int(iso[1]), int(iso[2]), int(iso[3]))
        if dmy:
            return date(int(dmy[3]), int(dmy[2]), int(dmy[1]))
    except ValueError:
        raise ValueError("not a calendar date") from None
    raise ValueError("not a date in the form YYYY-MM-DD or DD/MM/YYYY")


@cache
def _country_names() -> dict[str, str]:
    """Folded English and French names, alpha-3 codes -> alpha-2."""
    french = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["fr"])
    names: dict[str, str] = {}
    for country in pycountry.countries:
        code = country.alpha_2
        english = [country.name, getattr(country, "common_name", None)]
        english.append(getattr(country, "official_name", None))
        for name in english:
            if name:
                names[fold_header(name)] = code
                names[fold_header(french.gettext(name))] = code
        names[country.alpha_3.lower()] = code
    return names


def country_code(text: str) -> str:
    """Two letters are kept as they are (the registration checks them); else a name or alpha-3."""
    if len(text) == 2:
        return text
    code = _country_names().get(fold_header(text))
    if code is None:
        raise ValueError("not an ISO 3166-1 country code or a known country name")
    return code


def phone_text(text: str) -> str:
    """``00`` international prefix as ``+``; the registration requires the international form."""
    compact = text.replace(" ", "")
    return "+" + compact[2:] if compact.startswith("00") else text


_LANGUAGES = {"fr": "fr", "francais": "fr", "french": "fr", "en": "en", "anglais": "en"}
_LANGUAGES["english"] = "en"
_SEXES = {
    "f": "female",
    "femme": "female",
    "feminin": "female",
    "female": "female",
    "woman": "female",
    "m": "male",
    "h": "male",
    "homme": "male",
    "masculin": "male",
    "male": "male",
    "man": "male",
    "autre": "other",
    "other": "other",
    "x": "other",
}


def language(text: str) -> str:
    found = _LANGUAGES.get(fold_header(text))
    if found is None:
        raise ValueError("not fr or en")
    return found


def sex(text: str) -> str:
    found = _SEXES.get(fold_header(text))
    if found is None:
        raise ValueError("not F, M or other")
    return found
