"""Reading an embassy list: CSV (any usual encoding and delimiter) or XLSX, as rows of text.

What comes out is the same for both formats: the header cells, then one
:class:`Record` per line of the sheet after the header, numbered as a
spreadsheet numbers them (the header is row 1), so that an officer finds a
reported row where their spreadsheet program shows it. Reading is
deterministic: reading the same bytes twice gives the same records in the same
order, which is what lets an interrupted import resume at a record position.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Literal

from charset_normalizer import from_bytes

Format = Literal["csv", "xlsx"]

# Non-UTF-8 embassy lists are exported by spreadsheet programs in a Western code page;
# limiting detection to these avoids the look-alikes (cp1250, cp1251...) that
# charset-normalizer might otherwise prefer for short French texts.
LEGACY_ENCODINGS = ["cp1252", "iso8859_15", "mac_roman", "cp850"]
DELIMITERS = (";", ",", "\t", "|")
# A cell longer than this is not a name, a date or a phone number.
MAX_CELL = 1_000
# Bigger fields make the csv module raise; caught and reported as an unreadable file.
csv.field_size_limit(1_000_000)


@dataclass(frozen=True)
class Limits:
    """What a file may hold before it is read (``REGISTRY_IMPORT_*`` settings).

    An XLSX is a zip archive: its members' declared uncompressed sizes bound what
    decompression produces (Python's zipfile stops at the declared size and fails on a
    mismatch), so they are checked before any member is inflated.
    """

    # Cells per row (up to the last non-empty one).
    max_columns: int = 200
    # Characters per cell.
    max_cell: int = MAX_CELL
    # Sum of an XLSX archive's members' uncompressed sizes.
    max_uncompressed: int = 200 * 1024 * 1024
    # Uncompressed / compressed size of any XLSX member over 1 MiB.
    max_ratio: float = 100.0


DEFAULT_LIMITS = Limits()


class UnreadableFile(ValueError):
    """The file is not a CSV or XLSX list this importer can read (the whole file is refused)."""


class TooLargeWhenRead(UnreadableFile):
    """The file would expand beyond the limits when read (an XLSX zip bomb): 413."""


def check_archive(content: bytes, limits: Limits) -> None:
    """Refuse an XLSX whose members would inflate beyond the limits, before inflating any."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise UnreadableFile(f"the workbook cannot be opened: {error}") from error
    total = 0
    for member in members:
        total += member.file_size
        if total > limits.max_uncompressed:
            raise TooLargeWhenRead(
                f"the workbook expands to more than {limits.max_uncompressed} bytes when "
                "unzipped: save the list as CSV or split it"
            )
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > 1024 * 1024 and ratio > limits.max_ratio:
            raise TooLargeWhenRead(
                f"a part of the workbook ({member.filename}) is compressed {ratio:.0f} to 1, "
                f"more than {limits.max_ratio:.0f} to 1: refused as a decompression bomb"
            )


def _bounded(cells: tuple[str, ...], row: int, limits: Limits) -> tuple[str, ...]:
    """The row's cells, refused when it has too many or one is too long."""
    width = len(cells)
    while width and not cells[width - 1]:
        width -= 1
    if width > limits.max_columns:
        raise UnreadableFile(
            f"row {row} has {width} cells, more than {limits.max_columns}: is it an embassy list?"
        )
    for position, cell in enumerate(cells[:width]):
        if len(cell) > limits.max_cell:
            raise UnreadableFile(
                f"row {row}, column {position + 1}: a cell of {len(cell)} characters, "
                f"more than {limits.max_cell}"
            )
    return cells


@dataclass(frozen=True)
class Record:
    """One line after the header: its row number in the sheet and its cells as text."""

    row: int
    cells: tuple[str, ...]

    @property
    def blank(self) -> bool:
        return not any(self.cells)


@dataclass(frozen=True)
class Sheet:
    """A readable file: its format, how it was decoded, its header and its records."""

    format: Format
    encoding: str | None
    delimiter: str | None
    header: tuple[str, ...]
    content: bytes
    limits: Limits = DEFAULT_LIMITS

    def records(self) -> Iterator[Record]:
        """The records after the header, in file order (re-reads the bytes each time)."""
        rows = _rows(self.content, self.format, self.encoding, self.delimiter, self.limits)
        next(rows, None)  # the header
        for number, cells in enumerate(rows, start=2):
            yield Record(number, cells)


def detect_format(content: bytes, filename: str | None = None) -> Format:
    if content[:4] == b"PK\x03\x04":
        return "xlsx"
    if filename and filename.lower().endswith((".xlsx", ".xlsm")):
        raise UnreadableFile("the file is named .xlsx but is not an Excel workbook")
    return "csv"


def detect_encoding(content: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else the likeliest Western code page."""
    if content.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    best = from_bytes(content[:200_000], cp_isolation=LEGACY_ENCODINGS).best()
    return best.encoding if best is not None else "cp1252"


def detect_delimiter(header_line: str) -> str:
    """The delimiter that splits the header line into the most columns (``;`` on a tie)."""
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    if counts[best] == 0:
        raise UnreadableFile(
            "the header line has a single column: separate columns with ';' or ','"
        )
    return best


def _text(content: bytes, encoding: str) -> str:
    try:
        return content.decode(encoding)
    except (UnicodeDecodeError, LookupError) as error:
        raise UnreadableFile(f"the file cannot be decoded as {encoding}") from error


def _clean(value: str) -> str:
    return value.strip()


def _csv_rows(
    content: bytes, encoding: str, delimiter: str, limits: Limits = DEFAULT_LIMITS
) -> Iterator[tuple[str, ...]]:
    # Decoded as it is read (a row at a time), not as one text: what a read holds at once
    # is the file's bytes and the row at hand.
    try:
        text = io.TextIOWrapper(io.BytesIO(content), encoding=encoding, newline="")
    except LookupError as error:
        raise UnreadableFile(f"the file cannot be decoded as {encoding}") from error
    reader = csv.reader(text, delimiter=delimiter)
    try:
        for number, row in enumerate(reader, start=1):
            yield _bounded(tuple(_clean(c) for c in row), number, limits)
    except csv.Error as error:
        raise UnreadableFile(f"CSV line {reader.line_num}: {error}") from error
    except UnicodeDecodeError as error:
        raise UnreadableFile(f"the file cannot be decoded as {encoding}") from error


def _cell(value: object) -> str:
    """An XLSX cell as the text an officer sees in it."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal | float | int):
        return str(value)
    return _clean(str(value))


def _xlsx_rows(content: bytes, limits: Limits = DEFAULT_LIMITS) -> Iterator[tuple[str, ...]]:
    from openpyxl import load_workbook  # type: ignore[import-untyped]

    check_archive(content, limits)
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        raise UnreadableFile(f"the workbook cannot be opened: {error}") from error
    try:
        sheet = workbook.worksheets[0]
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield _bounded(tuple(_cell(v) for v in row), number, limits)
    finally:
        workbook.close()


def _rows(
    content: bytes, kind: Format, encoding: str | None, delimiter: str | None, limits: Limits
) -> Iterator[tuple[str, ...]]:
    if kind == "xlsx":
        return _xlsx_rows(content, limits)
    assert encoding is not None
    assert delimiter is not None
    return _csv_rows(content, encoding, delimiter, limits)


def open_sheet(
    content: bytes, filename: str | None = None, limits: Limits = DEFAULT_LIMITS
) -> Sheet:
    """Detect the format, encoding and delimiter and read the header; raises UnreadableFile."""
    if not content.strip():
        raise UnreadableFile("the file is empty")
    if detect_format(content, filename) == "xlsx":
        return reopen_sheet(content, "xlsx", None, None, limits)
    encoding = detect_encoding(content)
    first_line = _text(content, encoding).lstrip("\r\n").split("\n", 1)[0]
    return reopen_sheet(content, "csv", encoding, detect_delimiter(first_line), limits)


def reopen_sheet(
    content: bytes,
    kind: Format,
    encoding: str | None,
    delimiter: str | None,
    limits: Limits = DEFAULT_LIMITS,
) -> Sheet:
    """The sheet of a file :func:`open_sheet` has read before, from what it detected then
    (format, encoding, delimiter: an import job keeps them): the header is read again,
    nothing is detected again. Raises UnreadableFile."""
    header = next(_rows(content, kind, encoding, delimiter, limits), None)
    if header is None and kind == "xlsx":
        raise UnreadableFile("the first sheet of the workbook is empty")
    sheet = Sheet(kind, encoding, delimiter, _trim(header or ()), content, limits)
    if not any(sheet.header):
        raise UnreadableFile("the first line holds no column names")
    return sheet


def _trim(header: tuple[str, ...]) -> tuple[str, ...]:
    """The header without the empty cells a spreadsheet leaves after the last column."""
    cells = list(header)
    while cells and not cells[-1]:
        cells.pop()
    return tuple(cells)
