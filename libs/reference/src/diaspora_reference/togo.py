"""Togo's regions (ISO 3166-2:TG) and their prefectures.

Regions come from ISO 3166-2:TG through ``pycountry`` (codes TG-C, TG-K, TG-M,
TG-P, TG-S); their French names and seats are written here. Prefectures are a
hand-written list (``data/togo_prefectures.csv``: 39 prefectures, as they stand
since the law of May 2016 that created Mô, Agoè-Nyivé, Oti-Sud and
Kpendjal-Ouest); its sources and what could not be checked are in
``data/NOTICE.md``. The communes of the Autonomous District of Greater Lomé are
not listed: Lomé lies in the Golfe and Agoè-Nyivé prefectures.

Look-ups ignore accents, case, hyphens and spaces: ``prefecture("agoe nyive")``,
``prefecture("Agoè-Nyivé")`` and ``prefecture("agoe-nyive")`` are the same place.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources

import pycountry


class UnknownLocality(LookupError):
    """A region or prefecture of Togo that the reference data does not know."""


class UnknownRegion(UnknownLocality):
    pass


class UnknownPrefecture(UnknownLocality):
    pass


@dataclass(frozen=True)
class Region:
    code: str  # ISO 3166-2:TG, e.g. "TG-M"
    name: str  # short name: "Maritime"
    name_fr: str  # as written in French: "Région Maritime"
    seat: str  # chef-lieu


@dataclass(frozen=True)
class Prefecture:
    slug: str  # ASCII, lower case, hyphens: "agoe-nyive"
    name: str  # official spelling: "Agoè-Nyivé"
    region_code: str
    seat: str | None  # chef-lieu; None where the sources we had did not agree or say
    aliases: tuple[str, ...] = ()


# Names and seats of the regions (ISO 3166-2 gives codes and a short name only).
# The Maritime region's seat moved from Lomé to Tsévié when Greater Lomé became an
# autonomous district.
_REGIONS: dict[str, tuple[str, str, str]] = {
    "TG-C": ("Centrale", "Région Centrale", "Sokodé"),
    "TG-K": ("Kara", "Région de la Kara", "Kara"),
    "TG-M": ("Maritime", "Région Maritime", "Tsévié"),
    "TG-P": ("Plateaux", "Région des Plateaux", "Atakpamé"),
    "TG-S": ("Savanes", "Région des Savanes", "Dapaong"),
}


def fold(text: str) -> str:
    """A key for matching names: no accents, case folded, letters and digits only."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return "".join(c for c in plain if c.isalnum())


@dataclass(frozen=True)
class _Data:
    regions: dict[str, Region]
    prefectures: tuple[Prefecture, ...]
    by_key: dict[str, Prefecture]


@cache
def _data() -> _Data:
    iso = {s.code for s in pycountry.subdivisions if s.country_code == "TG"}
    if iso != set(_REGIONS):
        # pycountry follows ISO; a change there must be reviewed here, not papered over.
        raise RuntimeError(f"ISO 3166-2:TG regions changed: {sorted(iso)} != {sorted(_REGIONS)}")
    regions = {
        code: Region(code=code, name=name, name_fr=name_fr, seat=seat)
        for code, (name, name_fr, seat) in _REGIONS.items()
    }
    text = (
        resources.files("diaspora_reference")
        .joinpath("data", "togo_prefectures.csv")
        .read_text(encoding="utf-8")
    )
    prefectures: list[Prefecture] = []
    by_key: dict[str, Prefecture] = {}
    for row in csv.DictReader(io.StringIO(text)):
        if row["region"] not in regions:
            raise RuntimeError(f"prefecture {row['name']!r}: unknown region {row['region']!r}")
        aliases = tuple(a.strip() for a in row["aliases"].split(";") if a.strip())
        prefecture = Prefecture(
            slug=row["slug"],
            name=row["name"],
            region_code=row["region"],
            seat=row["seat"] or None,
            aliases=aliases,
        )
        prefectures.append(prefecture)
        for name in (prefecture.slug, prefecture.name, *aliases):
            key = fold(name)
            if key in by_key and by_key[key] is not prefecture:
                raise RuntimeError(f"{name!r} names two prefectures")
            by_key[key] = prefecture
    ordered = tuple(sorted(prefectures, key=lambda p: (p.region_code, p.slug)))
    return _Data(regions=regions, prefectures=ordered, by_key=by_key)


def regions() -> list[Region]:
    """The five regions, by code."""
    return [r for _, r in sorted(_data().regions.items())]


def region(code: str) -> Region:
    """A region by its ISO 3166-2 code (``TG-M``, any case) or its name (``Maritime``,
    ``Région des Plateaux``); raises :class:`UnknownRegion`."""
    data = _data()
    candidate = code.strip().upper()
    if candidate in data.regions:
        return data.regions[candidate]
    key = fold(code)
    for found in data.regions.values():
        if key and key in (fold(found.name), fold(found.name_fr)):
            return found
    raise UnknownRegion(f"{code!r} is not a region of Togo (ISO 3166-2:TG code such as TG-M)")


def prefectures(region_code: str | None = None) -> list[Prefecture]:
    """Every prefecture, or those of one region (code or name), by region then slug."""
    if region_code is None:
        return list(_data().prefectures)
    wanted = region(region_code).code
    return [p for p in _data().prefectures if p.region_code == wanted]


def prefecture(slug_or_name: str, region_code: str | None = None) -> Prefecture:
    """A prefecture by slug, name or former name, accents, case, hyphens and spaces
    ignored; with ``region_code``, it must lie in that region. Raises
    :class:`UnknownPrefecture` (or :class:`UnknownRegion` for a bad region)."""
    found = _data().by_key.get(fold(slug_or_name))
    if found is None:
        raise UnknownPrefecture(f"{slug_or_name!r} is not a prefecture of Togo")
    if region_code is not None:
        wanted = region(region_code)
        if found.region_code != wanted.code:
            raise UnknownPrefecture(
                f"{found.name} lies in region {found.region_code}, not in {wanted.code}"
            )
    return found
