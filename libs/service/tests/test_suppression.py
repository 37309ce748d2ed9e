"""Small-cell suppression: primary and complementary."""

from __future__ import annotations

from diaspora_service.suppression import hidden_cells


def test_cells_under_the_threshold_are_hidden() -> None:
    counts = {"FR": 40, "DE": 12, "BE": 3}
    assert hidden_cells(counts, threshold=5, total=None, additive=False) == {"BE"}


def test_one_hidden_cell_of_an_additive_table_takes_the_smallest_shown_one_with_it() -> None:
    counts = {"FR": 40, "DE": 12, "BE": 3}
    # With the total published, BE = total - FR - DE: DE is hidden too.
    assert hidden_cells(counts, threshold=5, total=55, additive=True) == {"BE", "DE"}


def test_hidden_cells_must_together_reach_the_threshold() -> None:
    counts = {"a": 50, "b": 1, "c": 1, "d": 6, "e": 9}
    # b + c = 2 < 5: the smallest shown cell (d) joins them.
    assert hidden_cells(counts, threshold=5, total=67, additive=True) == {"b", "c", "d"}


def test_a_small_total_hides_everything() -> None:
    counts = {"a": 2, "b": 1}
    assert hidden_cells(counts, threshold=5, total=3, additive=True) == {"a", "b"}


def test_nothing_hidden_when_every_cell_is_large_enough() -> None:
    counts = {"a": 5, "b": 7}
    assert hidden_cells(counts, threshold=5, total=12, additive=True) == set()
