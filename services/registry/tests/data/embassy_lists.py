"""Embassy lists for import tests, built row by row with the expected outcome of each row.

Every row says what the import must do with it: ``accepted``, ``duplicate``
(registered and flagged) or ``rejected`` with the (column, reason fragment) the
error report must hold; blank lines are recorded too. Valid people get
distinct birth dates, phones and emails and random-syllable names, so that no
two of them look alike by accident: the only duplicates are those planted.
"""

from __future__ import annotations

import codecs
import csv
import io
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from openpyxl import Workbook

Outcome = Literal["accepted", "duplicate", "rejected", "blank"]

HEADER_FR = ("Nom", "Prénom", "Date de naissance", "Pays", "Téléphone", "Courriel", "Sexe")
HEADER_EN = ("family_name", "given_name", "date_of_birth", "country", "phone", "email", "sex")
SYLLABLES = (
    "ko", "da", "mé", "si", "lo", "ba", "fi", "nu", "ra", "té", "vo", "gu", "pè", "zo",
    "ki", "ma", "sa", "yé", "wo", "ni", "de", "hu", "la", "tsi", "ga", "bè", "no", "xo",
)  # fmt: skip
EWE = ("ɔ", "ɛ", "ɖ")


@dataclass
class Row:
    cells: tuple[str, ...]
    outcome: Outcome
    # (column header, fragment of the reason) expected in the error report
    errors: list[tuple[str | None, str]] = field(default_factory=list)


@dataclass
class Person:
    family_name: str
    given_name: str
    date_of_birth: date
    country: str
    phone: str
    email: str


class Lists:
    """A source of distinct people and of the variants and faults planted among them."""

    def __init__(self, seed: int, *, phone_base: int) -> None:
        self.random = random.Random(seed)
        self.counter = 0
        self.phone_base = phone_base
        # Three days apart, offset by the seed: files built with seeds 0, 1, 2 share no date.
        self.first_day = date(1920, 1, 1) + timedelta(days=seed % 3)

    def _name(self, ewe: bool) -> str:
        parts = [self.random.choice(SYLLABLES) for _ in range(self.random.randint(2, 4))]
        name = "".join(parts)
        if ewe:
            name = name.replace("o", self.random.choice(EWE), 1)
        return name.capitalize()

    def person(self, *, ewe: bool = False) -> Person:
        self.counter += 1
        n = self.counter
        country = "FR" if n % 3 else "ES"
        phone = (
            f"+33 6 {self.phone_base + n:08d}"
            if country == "FR"
            else f"+34 6{self.phone_base + n:08d}"
        )
        return Person(
            family_name=self._name(ewe),
            given_name=self._name(ewe),
            # Apart, so two people never share a birth date (up to ~10,000 people a list).
            date_of_birth=self.first_day + timedelta(days=3 * n),
            country=country,
            phone=phone,
            email=f"p{self.phone_base + n}@example.org",
        )


def cells(p: Person, *, dmy: bool = True, sex: str = "") -> tuple[str, ...]:
    birth = p.date_of_birth.strftime("%d/%m/%Y") if dmy else p.date_of_birth.isoformat()
    return (p.family_name, p.given_name, birth, p.country, p.phone, p.email, sex)


def variant(p: Person, lists: Lists) -> Person:
    """The same person written differently: accents or Ewe letters dropped, names swapped,
    another phone and email (a new registration from the same person)."""
    from registry.duplicates.normalise import name_words  # the words, unaccented

    family = " ".join(w.capitalize() for w in name_words(p.family_name))
    given = " ".join(w.upper() for w in name_words(p.given_name))
    other = lists.person()
    swap = lists.random.random() < 0.5
    return Person(
        family_name=given if swap else family,
        given_name=family if swap else given,
        date_of_birth=p.date_of_birth,
        country=p.country,
        phone=other.phone,
        email=other.email,
    )


def faulty(lists: Lists, kind: int, header: tuple[str, ...]) -> Row:
    """A row with one planted fault (of 7 kinds); the expected column and reason."""
    p = lists.person()
    row = list(cells(p))
    column: str | None
    if kind == 0:
        row[2], column, reason = "31/02/1990", header[2], "not a calendar date"
    elif kind == 1:
        row[2], column, reason = "hier", header[2], "not a date"
    elif kind == 2:
        row[4], column, reason = "06 12 34 56 78", header[4], "phone"
    elif kind == 3:
        row[3], column, reason = "Atlantide", header[3], "country"
    elif kind == 4:
        row[3], column, reason = "XX", header[3], "country"
    elif kind == 5:
        row[5], column, reason = "", header[5], "required"
    else:
        # Germany is the Berlin embassy's: outside a Paris officer's jurisdiction.
        row[3], row[4] = "DE", f"+49 151 {lists.phone_base + lists.counter:08d}"
        column, reason = header[3], "outside your jurisdiction"
    return Row(tuple(row), "rejected", [(column, reason)])


def build_rows(
    lists: Lists,
    *,
    rows: int,
    header: tuple[str, ...],
    existing: list[Person],
    ewe: bool,
    dmy: bool = True,
) -> list[Row]:
    """``rows`` data rows (plus some blank lines): mostly valid people, one row in 10 faulty,
    one in 25 a variant of an earlier row, and variants of ``existing`` members."""
    out: list[Row] = []
    seen: list[Person] = []
    kinds = 0
    for n in range(rows):
        if n and n % 97 == 0:
            out.append(Row(("",) * len(header), "blank"))
        if n % 10 == 9:
            out.append(faulty(lists, kinds % 7, header))
            kinds += 1
        elif n % 25 == 24 and seen:
            out.append(Row(cells(variant(lists.random.choice(seen), lists), dmy=dmy), "duplicate"))
        elif n % 50 == 7 and existing:
            twin = existing.pop()
            out.append(Row(cells(variant(twin, lists), dmy=dmy), "duplicate"))
        else:
            p = lists.person(ewe=ewe and n % 2 == 0)
            seen.append(p)
            out.append(Row(cells(p, dmy=dmy, sex="F" if n % 2 else "Homme"), "accepted"))
    return out


def csv_bytes(
    header: tuple[str, ...], rows: list[Row], *, encoding: str, delimiter: str, bom: bool
) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        if row.outcome == "blank":
            out.write("\r\n")
        else:
            writer.writerow(row.cells)
    data = out.getvalue().encode(encoding)
    return codecs.BOM_UTF8 + data if bom else data


def xlsx_bytes(header: tuple[str, ...], rows: list[Row]) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("membres")
    sheet.append(list(header))
    for row in rows:
        sheet.append([None] * len(header) if row.outcome == "blank" else list(row.cells))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def expected(rows: list[Row]) -> dict[str, int]:
    data = [r for r in rows if r.outcome != "blank"]
    return {
        "total_rows": len(data),
        "blank_rows": len(rows) - len(data),
        "accepted": sum(r.outcome == "accepted" for r in data),
        "duplicates": sum(r.outcome == "duplicate" for r in data),
        "rejected": sum(r.outcome == "rejected" for r in data),
    }


def expected_errors(rows: list[Row]) -> dict[int, list[tuple[str | None, str]]]:
    """Spreadsheet row number (header = 1) -> expected (column, reason fragment)."""
    return {n: r.errors for n, r in enumerate(rows, start=2) if r.outcome == "rejected"}
