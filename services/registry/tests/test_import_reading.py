"""Reading embassy lists: encodings, delimiters, XLSX cells, header mapping, conversions."""

from __future__ import annotations

import codecs
import io
from datetime import date, datetime

import pytest
from openpyxl import Workbook

from registry.imports import columns, reading
from registry.imports.jobs import InvalidImport, inspect_file
from registry.imports.reading import UnreadableFile, open_sheet, reopen_sheet

TEXT = (
    "Nom;Prénom;Date de naissance;Pays;Téléphone;Courriel;Ville\n"
    "Agbéko;Noël;27/04/1990;France;+33 6 12 34 56 78;noel@example.org;Besançon\n"
    ";;;;;;\n"
    "Kpélé;Françoise;1985-12-01;DE;+49 151 23456789;f@example.org;Köln\n"
)


@pytest.mark.parametrize(
    ("encoded", "encoding"),
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8-sig"),
        (TEXT.encode("cp1252"), "cp1252"),
        (TEXT.replace(";", ",").encode("cp1252"), "cp1252"),
    ],
)
def test_csv_encodings_and_delimiters_give_the_same_records(encoded: bytes, encoding: str) -> None:
    sheet = open_sheet(encoded, "list.csv")
    assert sheet.format == "csv"
    assert sheet.encoding == encoding
    assert sheet.header[0] == "Nom"
    records = list(sheet.records())
    assert [r.row for r in records] == [2, 3, 4]
    assert records[0].cells[:2] == ("Agbéko", "Noël")
    assert records[0].cells[6] == "Besançon"
    assert records[1].blank
    assert records[2].cells[6] == "Köln"


def test_a_sheet_reopened_from_what_was_detected_reads_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The import runner reopens a job's file from the format, encoding and delimiter
    found at upload: the same header and records, without detecting anything again."""
    content = TEXT.replace(";", ",").encode("cp1252")
    detected = open_sheet(content, "list.csv")

    def no_detection(*_: object) -> str:
        raise AssertionError("detected again")

    monkeypatch.setattr(reading, "detect_encoding", no_detection)
    monkeypatch.setattr(reading, "detect_delimiter", no_detection)
    reopened = reopen_sheet(content, "csv", detected.encoding, detected.delimiter)
    assert (reopened.encoding, reopened.delimiter) == ("cp1252", ",")
    assert reopened.header == detected.header
    assert list(reopened.records()) == list(detected.records())


def test_xlsx_cells_become_text_as_an_officer_sees_them() -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["nom", "prenom", "date_of_birth", "country", "phone", "email", None])
    sheet.append(["Mensah", "Ama", datetime(1990, 4, 27), "TG", "+22890123456", "a@b.tg", None])
    sheet.append([None, None, None, None, None, None, None])
    sheet.append(["Doe", "Jo", date(1970, 1, 2), "US", 33612345678, "j@d.us", None])
    out = io.BytesIO()
    book.save(out)
    read = open_sheet(out.getvalue(), "list.xlsx")
    assert read.format == "xlsx"
    assert read.header == ("nom", "prenom", "date_of_birth", "country", "phone", "email")
    records = list(read.records())
    assert records[0].cells[2] == "1990-04-27"
    assert records[1].blank
    assert records[2].cells[4] == "33612345678"
    assert [r.row for r in records] == [2, 3, 4]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"just one column\nvalue\n", "single column"),
        (b"PK\x03\x04garbage", "workbook"),
        (b'a;b\n"unterminated\n', None),
    ],
)
def test_unreadable_files_are_refused_whole(content: bytes, message: str | None) -> None:
    with pytest.raises((UnreadableFile, InvalidImport)) as raised:
        inspect_file(content, "x.csv", max_rows=10)
    if message:
        assert message in str(raised.value)


def test_missing_required_columns_refuse_the_file_and_name_them() -> None:
    with pytest.raises(InvalidImport) as raised:
        inspect_file("nom;prénom;pays\nA;B;FR\n".encode(), "x.csv", max_rows=10)
    assert raised.value.details["missing_columns"] == ["date_of_birth", "email", "phone"]


def test_headers_in_french_and_english_map_to_the_same_fields() -> None:
    french = columns.layout(
        ("Nom", "Prénom(s)", "Né(e) le", "Pays de résidence", "E-mail", "Tél", "Sexe", "N°")
    )
    english = columns.layout(
        ("family_name", "given_name", "date_of_birth", "country", "email", "phone", "sex")
    )
    assert set(french.positions) == set(english.positions)
    assert french.ignored == ("N°",)
    assert not french.missing


def test_cell_conversions() -> None:
    assert columns.parse_date("27/04/1990") == date(1990, 4, 27)
    assert columns.parse_date("1990-04-27") == date(1990, 4, 27)
    assert columns.parse_date("7.4.1990") == date(1990, 4, 7)
    for bad in ("31/02/1990", "1990/04/27", "April 27", "27/04/90"):
        with pytest.raises(ValueError):  # noqa: PT011 (messages checked elsewhere)
            columns.parse_date(bad)
    assert columns.country_code("France") == "FR"
    assert columns.country_code("Allemagne") == "DE"
    assert columns.country_code("côte d'ivoire") == "CI"
    assert columns.country_code("USA") == "US"
    assert columns.country_code("xx") == "xx"  # two letters: the registration decides
    with pytest.raises(ValueError, match="country"):
        columns.country_code("Atlantide")
    assert columns.phone_text("0033 6 12 34 56 78") == "+33612345678"
    assert columns.sex("Féminin") == "female"
    assert columns.language("Anglais") == "en"
