"""Reading an upload is bounded: zip bombs, too many rows or cells, cells too long, and the
reading itself in a forked process with a memory limit (registry.imports.bounded)."""

from __future__ import annotations

import io
import os
import zipfile

import pytest
from openpyxl import Workbook

from registry.imports.bounded import ReaderOutOfMemory, fork_available, run_bounded
from registry.imports.jobs import InvalidImport, inspect_file, inspect_upload
from registry.imports.reading import Limits
from registry.imports.settings import ImportSettings

HEADER = "Nom;Prénom;Date de naissance;Pays;Téléphone;Courriel\n"
ROW = "Mensah;Ama;1990-04-27;FR;+33612345678;ama@example.org\n"
MB = 1024 * 1024


def zip_bomb(inflated: int) -> bytes:
    """A real workbook whose first sheet's XML inflates to ``inflated`` bytes (one row of
    headers, then the same cell over and over): deflate packs it about 1000 to 1."""
    book = Workbook()
    book.active.append(["Nom", "Prénom", "Date de naissance", "Pays", "Téléphone", "Courriel"])
    plain = io.BytesIO()
    book.save(plain)
    cell = b'<row><c t="inlineStr"><is><t>a</t></is></c></row>'
    out = io.BytesIO()
    with (
        zipfile.ZipFile(plain) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb,
    ):
        for item in source.infolist():
            if item.filename != "xl/worksheets/sheet1.xml":
                bomb.writestr(item, source.read(item))
                continue
            with bomb.open(item.filename, "w") as sheet:
                sheet.write(b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlf')
                sheet.write(b'ormats.org/spreadsheetml/2006/main"><sheetData>')
                block = cell * (MB // len(cell))
                for _ in range(inflated // len(block)):
                    sheet.write(block)
                sheet.write(b"</sheetData></worksheet>")
    return out.getvalue()


def test_a_zip_bomb_is_refused_before_it_is_inflated() -> None:
    bomb = zip_bomb(64 * MB)
    assert len(bomb) < 1 * MB  # small on the wire
    with pytest.raises(InvalidImport) as ratio:
        inspect_file(bomb, "bomb.xlsx", max_rows=1000)
    assert ratio.value.status == 413
    assert "decompression bomb" in str(ratio.value)
    # Whatever the ratio, the total uncompressed size is bounded too.
    with pytest.raises(InvalidImport) as total:
        inspect_file(
            bomb, "bomb.xlsx", max_rows=1000, limits=Limits(max_uncompressed=32 * MB, max_ratio=1e9)
        )
    assert total.value.status == 413
    assert "expands to more than" in str(total.value)


@pytest.mark.parametrize(
    ("content", "limits", "message"),
    [
        # 300 columns in the header line.
        (";".join(f"c{i}" for i in range(300)) + "\n" + ROW, Limits(), "300 cells, more than 200"),
        # A data row wider than the limit (the header is within it).
        (HEADER + ROW.strip() + ";x" * 20 + "\n", Limits(max_columns=20), "row 2 has 26 cells"),
        (HEADER + ROW.replace("Ama", "A" * 2000), Limits(), "2000 characters, more than 1000"),
    ],
    ids=["columns in the header", "columns in a row", "cell length"],
)
def test_a_csv_beyond_the_limits_is_refused_with_the_reason(
    content: str, limits: Limits, message: str
) -> None:
    with pytest.raises(InvalidImport) as refused:
        inspect_file(content.encode(), "list.csv", max_rows=1000, limits=limits)
    assert refused.value.status == 422
    assert message in str(refused.value)


def test_a_csv_with_too_many_rows_is_refused() -> None:
    with pytest.raises(InvalidImport, match="more than 100 rows") as refused:
        inspect_file((HEADER + ROW * 101).encode(), "list.csv", max_rows=100)
    assert refused.value.status == 422


def hungry() -> int:
    return len(bytearray(512 * MB))


async def test_the_reading_happens_in_another_process_with_a_memory_limit() -> None:
    assert fork_available()
    assert await run_bounded(64 * MB, os.getpid) != os.getpid()

    with pytest.raises(ReaderOutOfMemory):
        await run_bounded(64 * MB, hungry)
    # The API process itself is unaffected, and a good file reads within the budget.
    settings = ImportSettings(reader_memory_bytes=256 * MB)
    counted = await inspect_upload((HEADER + ROW * 3).encode(), "list.csv", settings)
    assert (counted.total_rows, counted.sheet.format) == (3, "csv")
