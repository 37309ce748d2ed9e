"""ISCO-08 and ESCO data shipped in the package: codes, labels, hierarchy, search."""

from __future__ import annotations

from diaspora_reference import esco, isco


def test_isco_groups_have_four_levels_and_both_languages() -> None:
    counts = {level: len(isco.groups(level)) for level in (1, 2, 3, 4)}
    # ISCO-08: 10 major, 43 sub-major, 130 minor and 436 unit groups.
    assert counts == {1: 10, 2: 43, 3: 130, 4: 436}
    nurse = isco.group("2221")
    assert nurse is not None
    assert nurse.level == 4
    assert nurse.parent == "222"
    assert "infirm" in nurse.label_fr.lower()
    assert "nursing" in nurse.label_en.lower()
    assert isco.label("2221", "en") == nurse.label_en
    assert isco.label("2", "fr") == "Professions intellectuelles et scientifiques"


def test_isco_ancestors_and_unknown_codes() -> None:
    assert [g.code for g in isco.ancestors("2221")] == ["2", "22", "222"]
    assert isco.ancestors("2") == []
    for bad in ("9999", "22222", "", "abcd", "0000"):
        assert isco.group(bad) is None
        assert not isco.is_valid(bad)
        assert isco.ancestors(bad) == []
    assert [g.code for g in isco.children("22")] == ["221", "222", "223", "224", "225", "226"]


def test_esco_occupations_belong_to_isco_unit_groups() -> None:
    doctors = esco.occupations_for_isco("2211")
    assert doctors
    assert all(o.isco_code == "2211" for o in doctors)
    first = esco.occupation(doctors[0].uri)
    assert first == doctors[0]
    assert first is not None
    assert first.uri.startswith("http://data.europa.eu/esco/occupation/")
    assert first.label_fr
    assert first.label_en
    # A coarser group gathers its unit groups' occupations.
    health = esco.occupations_for_isco("22")
    assert {o.isco_code[:2] for o in health} == {"22"}
    assert len(health) > len(doctors)
    # Every occupation's ISCO group is a real unit group.
    assert all(isco.group(o.isco_code) is not None for o in esco.occupations_for_isco(""))
    assert esco.occupation("http://data.europa.eu/esco/occupation/nope") is None


def test_esco_skills_lookup_and_search() -> None:
    found = esco.find_skills("gestion de projet", "fr", limit=5)
    assert found
    top = found[0]
    assert "gestion de projet" in top.label_fr.lower() or any(
        "gestion de projet" in a.lower() for a in top.alt_labels_fr
    )
    assert esco.skill(top.uri) == top
    assert top.uri.startswith("http://data.europa.eu/esco/skill/")
    english = esco.find_skills("project management", "en", limit=5)
    assert english
    assert "project management" in english[0].label_en.lower()
    # Word prefixes, accents and case ignored.
    assert esco.find_skills("GEST PROJ", "fr", limit=3)
    assert esco.find_skills("électricité", "fr", limit=3) == esco.find_skills(
        "electricite", "fr", limit=3
    )
    assert esco.find_skills("zzzqqq", "fr") == []
    assert esco.find_skills("   ", "fr") == []
    assert len(esco.find_skills("a", "en", limit=7)) == 7
    assert esco.skill("http://data.europa.eu/esco/skill/nope") is None


def test_esco_occupation_search() -> None:
    found = esco.find_occupations("infirmier", "fr", limit=5)
    assert found
    assert all(o.isco_code.startswith(("22", "32", "53")) for o in found)
