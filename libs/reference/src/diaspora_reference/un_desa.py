"""Togo-born migrant stock by country of destination (UN DESA, International Migrant Stock 2019).

United Nations, Department of Economic and Social Affairs, Population Division (2019).
International Migrant Stock 2019 (POP/DB/MIG/Stock/Rev.2019). CC BY 3.0 IGO.

A lower bound: destinations whose statistics do not single out people born in Togo
(the United States among them) report nothing. See data/NOTICE.md.
"""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib import resources

import pycountry

FILE = "togo-born-migrant-stock-by-destination.csv"
# Names of the UN table that pycountry does not resolve by itself.
_NAMES = {
    "Bolivia (Plurinational State of)": "BO",
    "Congo": "CG",
    "Côte d'Ivoire": "CI",
    "Czechia": "CZ",
}
# Rows that are regions, not countries.
AGGREGATES = frozenset({"South America"})


def _code(name: str) -> str:
    if name in _NAMES:
        return _NAMES[name]
    found = pycountry.countries.get(name=name) or pycountry.countries.lookup(name)
    return str(found.alpha_2)


@cache
def _rows() -> tuple[tuple[str, int, int], ...]:
    """(destination name, year, stock) as published."""
    text = resources.files("diaspora_reference").joinpath("data", FILE).read_text("utf-8")
    return tuple(
        (row["destination"], int(row["year"]), int(row["togo_born_migrant_stock"]))
        for row in csv.DictReader(io.StringIO(text))
    )


def years() -> list[int]:
    return sorted({year for _name, year, _n in _rows()})


def latest_year() -> int:
    return years()[-1]


def migrant_stock(year: int | None = None) -> dict[str, int]:
    """People born in Togo per destination country (ISO 3166-1 alpha-2) in ``year``
    (default: the latest), largest first; regions left out."""
    year = latest_year() if year is None else year
    stock = {
        _code(name): n
        for name, row_year, n in _rows()
        if row_year == year and name not in AGGREGATES and n > 0
    }
    return dict(sorted(stock.items(), key=lambda kv: (-kv[1], kv[0])))


def total(year: int | None = None) -> int:
    return sum(migrant_stock(year).values())
