"""The observatory's tables in plain Python: cells with their dimensions and counts, the
platform's small-cell rule applied to them (``diaspora_service.suppression``), and their
CSV rendering."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

from diaspora_service.suppression import DEFAULT_THRESHOLD, hidden_cells

THRESHOLD = DEFAULT_THRESHOLD

Value = str | int | float | None


@dataclass
class Row:
    """One cell of a table: its dimensions (country, month, ...) and its measures (counts,
    durations). ``count`` is the number of cases, needs or referrals in the cell: the
    figure the small-cell rule is applied to."""

    dimensions: dict[str, str]
    count: int
    measures: dict[str, Value] = field(default_factory=dict)
    suppressed: bool = False
    # Measures of a shown row that are not published (small counts within the row).
    hidden: set[str] = field(default_factory=set)

    def measure(self, name: str) -> Value:
        if self.suppressed or name in self.hidden:
            return None
        return self.measures.get(name)


@dataclass
class Table:
    name: str
    dimensions: tuple[str, ...]
    measures: tuple[str, ...]
    rows: list[Row]
    total: int | None
    exact: bool
    threshold: int
    # Whether the small-cell rule applies at all (False: counts of public decisions).
    suppressible: bool = True

    def as_dict(self) -> dict[str, object]:
        return {
            "table": self.name,
            "exact": self.exact,
            "threshold": self.threshold,
            "suppression": self.suppressible and not self.exact,
            "total": self.total,
            "dimensions": list(self.dimensions),
            "measures": ["count", *self.measures],
            "rows": [
                {
                    **r.dimensions,
                    "count": None if r.suppressed else r.count,
                    **{m: r.measure(m) for m in self.measures},
                    "suppressed": r.suppressed,
                    "suppressed_measures": sorted(r.hidden) if not r.suppressed else [],
                }
                for r in self.rows
            ],
        }


def _key(row: Row) -> str:
    return "\x1f".join(row.dimensions.values())


def suppress(
    rows: Sequence[Row], *, threshold: int, additive: bool, with_total: bool = True
) -> int | None:
    """Marks the rows not to publish (in place) by the platform's rule, primary and
    complementary; returns the total to publish (None when it is itself small).

    ``additive``: each counted item is in exactly one row, so the rows add up to the
    total (which is published when ``with_total``)."""
    total = sum(r.count for r in rows)
    counts = {_key(r): r.count for r in rows}
    hidden = hidden_cells(
        counts, threshold=threshold, total=total if with_total else None, additive=additive
    )
    for row in rows:
        row.suppressed = _key(row) in hidden
    if with_total and rows and total < threshold:
        return None
    return total


def suppress_within(
    rows: Sequence[Row],
    parts: Sequence[str],
    depends: dict[str, tuple[str, ...]],
    *,
    threshold: int,
) -> None:
    """The rule applied inside each shown row whose ``parts`` (measures) add up to the
    row's count (a partner's referrals by outcome: the partner's total is published, so
    each partner is its own table); then each measure of ``depends`` (a median, a p90) is
    hidden when any count it is computed from is hidden or under the threshold (the
    median of four durations is nearly one person's)."""
    for row in rows:
        if row.suppressed:
            continue
        # A part that counts nothing is shown (0): there is no one in it to identify.
        counts = {p: n for p in parts if (n := int(row.measures.get(p) or 0))}
        row.hidden = hidden_cells(counts, threshold=threshold, total=row.count, additive=True)
        for measure, basis in depends.items():
            if any(b in row.hidden or int(row.measures.get(b) or 0) < threshold for b in basis):
                row.hidden.add(measure)


def render_csv(table: Table) -> str:
    """The table as CSV (RFC 4180 quoting, a header row): the dimensions, the count and the
    measures, then ``suppressed`` (``true``: the row's figures are left empty). A value
    typed by people that would start a spreadsheet formula is prefixed with ``'``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(
        [*table.dimensions, "count", *table.measures, "suppressed", "suppressed_measures"]
    )
    for row in table.rows:
        figures: list[Value] = [
            None if row.suppressed else row.count,
            *(row.measure(m) for m in table.measures),
        ]
        writer.writerow(
            [
                *(_safe(row.dimensions[d]) for d in table.dimensions),
                *("" if v is None else v for v in figures),
                "true" if row.suppressed else "false",
                " ".join(sorted(row.hidden)) if not row.suppressed else "",
            ]
        )
    return out.getvalue()


def _safe(text: str) -> str:
    # No spreadsheet formulas from data typed by people (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
