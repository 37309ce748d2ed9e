"""Small-cell suppression of published counts, the same rule in every service.

Primary suppression: a cell counting fewer than ``threshold`` people (5 by
default) is not shown.

Complementary suppression: when the cells of a table add up to a total that is
shown (each person or case is in exactly one cell), one hidden cell could be
recovered by subtracting the others from the total. So, while fewer than two
cells are hidden, or the hidden cells together count fewer than ``threshold``,
the smallest shown cell is hidden too. A total under the threshold hides the
total and every cell.

What this does not prevent: differencing across *different* queries (the same
table with and without a filter). Published figures are for analysts or the
public; exact counts are for the roles the policy lets see the records themselves.
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_THRESHOLD = 5


def hidden_cells(
    counts: Mapping[str, int], *, threshold: int, total: int | None, additive: bool
) -> set[str]:
    """The keys of ``counts`` not to publish.

    ``additive``: the cells add up to ``total``, which is published.
    """
    if total is not None and total < threshold:
        return set(counts)
    hidden = {key for key, n in counts.items() if n < threshold}
    if additive and hidden:
        shown = sorted((n, key) for key, n in counts.items() if key not in hidden)
        while shown and (len(hidden) < 2 or sum(counts[k] for k in hidden) < threshold):
            _n, key = shown.pop(0)
            hidden.add(key)
    return hidden
