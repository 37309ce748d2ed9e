"""The shipped UN DESA table, read with ISO codes."""

from __future__ import annotations

from diaspora_reference import un_desa


def test_latest_year_by_destination_country() -> None:
    assert un_desa.latest_year() == 2019
    stock = un_desa.migrant_stock()
    # The README of the data: 43 destinations, 530,938 people; one is the "South America"
    # aggregate (89), left out of the countries.
    assert len(stock) == 42
    assert un_desa.total() == 530_938 - 89
    assert list(stock)[:5] == ["NG", "BJ", "GH", "CI", "FR"]
    assert stock["NG"] == 154_754
    assert stock["DE"] == 13_177
    assert all(len(code) == 2 and code.isupper() for code in stock)


def test_earlier_years() -> None:
    assert un_desa.years() == [1990, 1995, 2000, 2005, 2010, 2015, 2019]
    assert un_desa.migrant_stock(1990)["GA"] == 7116
