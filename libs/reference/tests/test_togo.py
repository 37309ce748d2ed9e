"""Togo's regions (ISO 3166-2:TG) and prefectures."""

from __future__ import annotations

import pycountry
import pytest

from diaspora_reference import togo


def test_the_regions_are_those_of_iso_3166_2_tg() -> None:
    codes = [r.code for r in togo.regions()]
    assert codes == ["TG-C", "TG-K", "TG-M", "TG-P", "TG-S"]
    assert codes == sorted(s.code for s in pycountry.subdivisions if s.country_code == "TG")
    assert togo.region("tg-p").name_fr == "Région des Plateaux"
    assert togo.region("Maritime").code == "TG-M"
    assert togo.region("region des savanes").code == "TG-S"


@pytest.mark.parametrize("code", ["TG-X", "TG", "", "Lomé", "FR-75"])
def test_unknown_regions_are_refused(code: str) -> None:
    with pytest.raises(togo.UnknownRegion):
        togo.region(code)


def test_39_prefectures_spread_over_the_regions() -> None:
    counts = {r.code: len(togo.prefectures(r.code)) for r in togo.regions()}
    # Centrale 5, Kara 7, Maritime 8, Plateaux 12, Savanes 7 (39 since the 2016 law).
    assert counts == {"TG-C": 5, "TG-K": 7, "TG-M": 8, "TG-P": 12, "TG-S": 7}
    everything = togo.prefectures()
    assert len(everything) == 39
    assert len({p.slug for p in everything}) == 39
    assert all(p.slug.isascii() and p.slug == p.slug.lower() for p in everything)
    assert togo.prefectures("Kara") == togo.prefectures("TG-K")


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Agoè-Nyivé", "agoe-nyive"),
        ("agoe nyive", "agoe-nyive"),
        ("AGOE-NYIVE", "agoe-nyive"),
        ("Tône", "tone"),
        ("tone", "tone"),
        ("Kéran", "keran"),
        ("Mô", "mo"),
        ("Plaine du Mô", "mo"),  # its name as a sub-prefecture (2009-2016)
        ("Bimah", "binah"),  # a spelling found in some lists
        ("Kpélé-Akata", "kpele"),
        ("est mono", "est-mono"),
    ],
)
def test_prefectures_are_found_whatever_the_accents_case_and_hyphens(text: str, slug: str) -> None:
    assert togo.prefecture(text).slug == slug


def test_a_prefecture_must_lie_in_the_region_given() -> None:
    assert togo.prefecture("Kozah", "TG-K").name == "Kozah"
    with pytest.raises(togo.UnknownPrefecture, match="TG-K"):
        togo.prefecture("Kozah", "TG-M")
    with pytest.raises(togo.UnknownRegion):
        togo.prefecture("Kozah", "TG-Z")


@pytest.mark.parametrize("text", ["Lomé", "Paris", "", "Golfe 1"])
def test_unknown_prefectures_are_refused(text: str) -> None:
    with pytest.raises(togo.UnknownPrefecture):
        togo.prefecture(text)
