"""The packaged gazetteer: cities by name (accents, case, alternate names) and by GeoNames id."""

from __future__ import annotations

from diaspora_reference import places


def test_city_by_name_ignores_accents_and_case() -> None:
    lome = places.city("TG", "lome")
    assert lome is not None
    assert lome.name == "Lomé"
    assert lome.country == "TG"
    assert 6 < lome.latitude < 6.3
    assert 1.1 < lome.longitude < 1.3
    assert places.city("tg", "LOMÉ") == lome
    assert places.city_by_geonames_id(lome.geonames_id) == lome


def test_most_populous_city_wins_and_alternate_names_match() -> None:
    paris = places.city("FR", "Paris")
    assert paris is not None
    assert paris.geonames_id == 2988507
    # French names of foreign cities are GeoNames alternate names.
    brussels = places.city("BE", "Bruxelles")
    assert brussels is not None
    assert brussels.name == "Brussels"
    munich = places.city("DE", "München")
    assert munich is not None
    assert munich.name == "Munich"
    # The country matters: Paris, Texas is not Paris, France.
    texas = places.city("US", "Paris")
    assert texas is not None
    assert texas.country == "US"
    assert texas.geonames_id != paris.geonames_id


def test_unknown_places_are_none() -> None:
    assert places.city("FR", "Nowhereville-sur-Rien") is None
    assert places.city("FR", "") is None
    assert places.city("ZZ", "Paris") is None
    assert places.city_by_geonames_id(1) is None


def test_find_cities_by_prefix() -> None:
    found = places.find_cities("CI", "abid", limit=3)
    assert found
    assert found[0].name == "Abidjan"
    assert places.find_cities("CI", "", limit=3) == []
