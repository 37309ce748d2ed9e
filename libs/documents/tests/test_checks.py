"""Upload checks on real files made here: type by content, size while streaming, pages, pixels."""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from diaspora_documents import checks
from diaspora_documents import testing as samples
from diaspora_documents.checks import (
    Kind,
    TooLarge,
    Unreadable,
    UnsupportedType,
    UploadLimits,
    UploadRefused,
    check_type,
    checked_upload,
    inspect,
    inspect_file,
)
from diaspora_documents.isolation import LimitExceeded, run_isolated
from diaspora_documents.problems import store_problem, upload_problem
from diaspora_documents.store import StoreUnavailable


def _files(folder: Path) -> list[Path]:
    return list(folder.iterdir())


LIMITS = UploadLimits(max_bytes=2 * 1024 * 1024, max_pdf_pages=5, max_image_pixels=4_000_000)


async def _receive(
    data: bytes,
    spool: Path,
    *,
    filename: str | None = None,
    content_type: str | None = None,
    limits: UploadLimits = LIMITS,
    isolate: bool = False,
    pulled: list[int] | None = None,
) -> tuple[Kind, int, str, object]:
    async with checked_upload(
        samples.stream(data, pulled=pulled),
        filename=filename,
        content_type=content_type,
        limits=limits,
        spool_dir=spool,
        isolate=isolate,
    ) as upload:
        assert upload.path.read_bytes() == data
        assert b"".join([c async for c in upload.chunks()]) == data
        return upload.kind, upload.size, upload.content_type, upload.inspection


# -- accepted --------------------------------------------------------------------------------


async def test_a_pdf_within_the_page_limit_is_accepted_with_its_page_count(tmp_path: Path) -> None:
    data = samples.pdf(5)
    kind, size, content_type, inspection = await _receive(
        data, tmp_path, filename="passport.pdf", content_type="application/pdf"
    )
    assert (kind, size, content_type) == (Kind.PDF, len(data), "application/pdf")
    assert inspection.pages == 5  # type: ignore[attr-defined]
    assert _files(tmp_path) == []  # the spooled copy is gone


@pytest.mark.parametrize(("kind", "name"), [("png", "photo.PNG"), ("jpeg", "photo.jpg")])
async def test_an_image_within_the_pixel_limit_is_accepted_with_its_size(
    tmp_path: Path, kind: str, name: str
) -> None:
    data = samples.image(kind, 2000, 1500)  # 3 Mpx, the limit is 4
    got, _, content_type, inspection = await _receive(
        data, tmp_path, filename=name, content_type="application/octet-stream"
    )
    assert got == Kind(kind)
    assert content_type == f"image/{kind}"
    assert (inspection.width, inspection.height) == (2000, 1500)  # type: ignore[attr-defined]


async def test_the_structure_is_read_in_an_isolated_process(tmp_path: Path) -> None:
    data = samples.pdf(3)
    *_, inspection = await _receive(data, tmp_path, filename="a.pdf", isolate=True)
    assert inspection.pages == 3  # type: ignore[attr-defined]


# -- refused by type ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "filename", "content_type", "named"),
    [
        (samples.ELF, "scan.pdf", "application/pdf", "an ELF executable"),
        (samples.PE, "scan.pdf", None, "a Windows executable"),
        (samples.SCRIPT, None, "application/pdf", "a script"),
        (samples.ELF, None, "image/png", "an ELF executable"),
    ],
)
async def test_a_renamed_executable_is_refused_after_its_first_bytes(
    tmp_path: Path, data: bytes, filename: str | None, content_type: str | None, named: str
) -> None:
    pulled: list[int] = []
    big = data + b"\x00" * (1024 * 1024)  # 257 chunks of 4 KiB if it were read whole
    with pytest.raises(UnsupportedType) as refusal:
        await _receive(big, tmp_path, filename=filename, content_type=content_type, pulled=pulled)
    assert refusal.value.status == 415
    assert refusal.value.code == "executable"
    assert named in str(refusal.value)
    assert len(pulled) == 1  # refused on its first chunk: the rest was never read
    assert _files(tmp_path) == []


@pytest.mark.parametrize(
    ("data", "filename", "content_type", "says"),
    [
        (samples.image("png", 10, 10), "scan.pdf", None, "says PDF"),
        (samples.pdf(1), "scan.png", None, "says PNG"),
        (samples.pdf(1), "scan.exe", None, "does not end with .pdf"),
        (samples.pdf(1), None, "image/png", "sent as 'image/png'"),
        (samples.image("jpeg", 10, 10), "a.jpg", "text/html", "sent as 'text/html'"),
    ],
)
async def test_a_name_or_declared_type_that_lies_is_refused(
    tmp_path: Path, data: bytes, filename: str | None, content_type: str | None, says: str
) -> None:
    with pytest.raises(UnsupportedType) as refusal:
        await _receive(data, tmp_path, filename=filename, content_type=content_type)
    assert refusal.value.code == "mismatch"
    assert says in str(refusal.value)


@pytest.mark.parametrize(
    ("head", "named"),
    [
        (b"PK\x03\x04" + b"\x00" * 40, "a ZIP archive"),
        (b"GIF89a" + b"\x00" * 40, "a GIF image"),
        (b"  <html><script>alert(1)</script></html>", "markup or a script"),
        (b"", "an empty file"),
        (b"hello, this is plain text", "a file of unknown type"),
    ],
)
def test_other_types_are_refused_and_named(head: bytes, named: str) -> None:
    with pytest.raises(UnsupportedType) as refusal:
        check_type(head, filename=None)
    assert refusal.value.code == "type"
    assert named in str(refusal.value)


@pytest.mark.parametrize("filename", ["blob", "image", None, "scan.JPEG"])
def test_a_name_without_extension_says_nothing(filename: str | None) -> None:
    assert check_type(samples.image("jpeg", 4, 4), filename=filename) is Kind.JPEG


def test_a_kind_the_service_does_not_allow_is_refused() -> None:
    with pytest.raises(UnsupportedType, match="accepted: PDF"):
        check_type(samples.image("png", 4, 4), allowed=frozenset({Kind.PDF}))


# -- refused by size ---------------------------------------------------------------------------


async def test_reading_stops_once_the_size_limit_is_passed(tmp_path: Path) -> None:
    data = samples.pdf(1) + b"\n%" + b"x" * (5 * 1024 * 1024)  # a valid start, then 5 MiB
    pulled: list[int] = []
    with pytest.raises(TooLarge) as refusal:
        await _receive(data, tmp_path, filename="big.pdf", pulled=pulled)
    assert (refusal.value.status, refusal.value.code) == (413, "bytes")
    # 2 MiB allowed, 4 KiB chunks: the 513th chunk passes the limit, nothing after it is read.
    assert len(pulled) == 2 * 1024 * 1024 // 4096 + 1
    assert _files(tmp_path) == []


async def test_a_pdf_with_too_many_pages_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TooLarge) as refusal:
        await _receive(samples.pdf(6), tmp_path, filename="a.pdf", isolate=True)
    assert refusal.value.code == "pages"
    assert "6 pages, more than 5" in str(refusal.value)


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (samples.png_claiming(50_000, 50_000), "bomb.png"),  # 2.5 Gpx: Pillow's own error
        (samples.png_claiming(3000, 3000), "big.png"),  # 9 Mpx: the service's limit
        (samples.jpeg_claiming(60_000, 60_000), "bomb.jpg"),
        (samples.jpeg_claiming(2500, 2000), "big.jpg"),  # 5 Mpx
    ],
)
async def test_an_image_whose_header_announces_too_many_pixels_is_refused_unread(
    tmp_path: Path, data: bytes, filename: str
) -> None:
    assert len(data) < 2000  # small files: only the header says how large they would be
    started = time.monotonic()
    with pytest.raises(TooLarge) as refusal:
        await _receive(data, tmp_path, filename=filename)
    assert refusal.value.code == "pixels"
    assert "more than 4000000 pixels" in str(refusal.value) or "too large" in str(refusal.value)
    assert time.monotonic() - started < 2  # nothing was decompressed


def test_a_real_image_over_the_pixel_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    path.write_bytes(samples.image("png", 2001, 2000))  # 4 002 000 pixels
    with pytest.raises(TooLarge, match="2001 x 2000 pixels"):
        inspect_file(path, Kind.PNG, LIMITS)


# -- refused as damaged, encrypted or active -----------------------------------------------------


@pytest.mark.parametrize(
    ("data", "filename", "code"),
    [
        (b"%PDF-1.7\n" + b"this is no PDF at all\n" * 20, "a.pdf", "damaged"),
        (samples.pdf(2, password="secret"), "a.pdf", "encrypted"),
        # An encryption handler pypdf does not implement (it raises NotImplementedError).
        (samples.pdf(2, password="x").replace(b"/Standard", b"/Stendard"), "a.pdf", "damaged"),
        (samples.pdf(1, javascript="app.alert('hi');"), "a.pdf", "active_content"),
        (samples.pdf(1, attachment=samples.ELF), "a.pdf", "active_content"),
        (samples.image("png", 300, 300)[:400], "cut.png", "damaged"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 60, "a.jpg", "damaged"),
    ],
)
async def test_a_damaged_encrypted_or_active_document_is_refused(
    tmp_path: Path, data: bytes, filename: str, code: str
) -> None:
    with pytest.raises(Unreadable) as refusal:
        await _receive(data, tmp_path, filename=filename, isolate=True)
    assert (refusal.value.status, refusal.value.code) == (422, code)


# -- the isolated reader's limits ----------------------------------------------------------------


def _allocate(megabytes: int) -> int:
    block = bytearray(megabytes * 1024 * 1024)
    return len(block)


def _spin() -> int:
    count = 0
    while True:
        count += 1


async def test_a_parser_that_needs_too_much_memory_is_stopped() -> None:
    assert await run_isolated(_allocate, 8, memory=64 * 1024 * 1024, seconds=5) == 8 * 1024 * 1024
    with pytest.raises(LimitExceeded):
        await run_isolated(_allocate, 512, memory=64 * 1024 * 1024, seconds=5)


async def test_a_parser_that_runs_too_long_is_stopped() -> None:
    started = time.monotonic()
    with pytest.raises(LimitExceeded):
        await run_isolated(_spin, memory=64 * 1024 * 1024, seconds=1)
    assert time.monotonic() - started < 4


async def test_inspection_out_of_its_limits_is_a_413(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A parser that inflates what it reads (as a crafted PDF makes pypdf do): the forked
    # process inherits the patch, and its real memory limit stops it.
    def inflating(path: Path, limits: UploadLimits) -> object:
        return _allocate(512)

    monkeypatch.setattr(checks, "_inspect_pdf", inflating)
    path = tmp_path / "a.pdf"
    path.write_bytes(samples.pdf(1))
    tight = UploadLimits(inspect_memory_bytes=64 * 1024 * 1024, inspect_seconds=5)
    with pytest.raises(TooLarge) as refusal:
        await inspect(path, Kind.PDF, tight)
    assert refusal.value.code == "expands"
    assert "memory" in str(refusal.value)


async def test_the_parent_process_is_not_the_one_reading(tmp_path: Path) -> None:
    assert await run_isolated(os.getpid, memory=64 * 1024 * 1024, seconds=5) != os.getpid()


# -- problems --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("refusal", "status"),
    [
        (TooLarge("pixels", "too many"), 413),
        (UnsupportedType("executable", "an ELF"), 415),
        (Unreadable("encrypted", "locked"), 422),
    ],
)
def test_each_refusal_is_a_problem_with_its_status_and_code(
    refusal: UploadRefused, status: int
) -> None:
    problem = upload_problem(refusal)
    assert problem.status == status
    assert problem.extensions == {"code": refusal.code}
    assert problem.detail == refusal.detail
    assert problem.type is not None
    assert problem.type.endswith(refusal.code.replace("_", "-"))


def test_an_unavailable_store_is_a_503_that_names_no_server() -> None:
    problem = store_problem(StoreUnavailable("put 'k': could not connect to http://s3.internal"))
    assert problem.status == 503
    assert problem.headers == {"Retry-After": "5"}
    assert "s3.internal" not in f"{problem.title} {problem.detail}"


# -- crafted and malformed files: a refusal, never a crash ---------------------------------------


def _pdf_of(objects: list[bytes]) -> bytes:
    """A PDF with these objects (1 is the catalogue) and a correct cross-reference table."""
    out, offsets = b"%PDF-1.7\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return out


CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
PAGE = b"<< /Type /Page /Parent 2 0 R >>"


async def test_pages_are_counted_in_the_page_tree_not_taken_from_its_count(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.pdf"
    path.write_bytes(_pdf_of([CATALOG, b"<< /Type /Pages /Kids [3 0 R] /Count 9999999 >>", PAGE]))
    assert (await inspect(path, Kind.PDF, LIMITS)).pages == 1
    many = b" ".join([b"3 0 R"] * 6)  # six pages (the same one six times), /Count says 1
    path.write_bytes(_pdf_of([CATALOG, b"<< /Type /Pages /Kids [" + many + b"] /Count 1 >>", PAGE]))
    with pytest.raises(TooLarge, match="6 pages"):
        await inspect(path, Kind.PDF, LIMITS)


@pytest.mark.parametrize(
    "objects",
    [
        [CATALOG, b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>", PAGE],  # a cycle
        [CATALOG[:-2] + b"/X " + b"[" * 100_000 + b"]" * 100_000 + b" >>", b"<< >>", PAGE],
        [CATALOG, b"<< /Type /Pages /Kids [" + b"3 0 R " * 200_000 + b"] /Count 1 >>", PAGE],
    ],
    ids=["cyclic page tree", "deeply nested", "200000 kids"],
)
async def test_a_crafted_pdf_structure_is_refused(tmp_path: Path, objects: list[bytes]) -> None:
    path = tmp_path / "a.pdf"
    path.write_bytes(_pdf_of(objects))
    with pytest.raises(UploadRefused) as refusal:
        await inspect(path, Kind.PDF, LIMITS)
    assert refusal.value.status in (413, 422)


def test_malformed_files_are_refused_and_never_crash_the_checks(tmp_path: Path) -> None:
    """Truncated and byte-flipped PDFs, PNGs and JPEGs: each is accepted or refused with
    an UploadRefused (a 4xx), never another exception (a 500)."""
    rng = random.Random(17)
    bases = {
        "a.pdf": samples.pdf(3),
        "b.pdf": samples.pdf(2, password="x"),
        "a.png": samples.image("png", 64, 48),
        "a.jpg": samples.image("jpeg", 64, 48),
    }
    outcomes: Counter[str] = Counter()
    for number in range(1500):
        name, base = rng.choice(list(bases.items()))
        data = bytearray(base)
        if rng.random() < 0.3:
            data = data[: rng.randrange(1, len(data))]
        else:
            for _ in range(rng.randint(1, 20)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        path = tmp_path / f"{number}"
        path.write_bytes(data)
        try:
            inspect_file(path, check_type(bytes(data[:16]), filename=name), UploadLimits())
            outcomes["accepted"] += 1
        except UploadRefused as refusal:
            outcomes[refusal.code] += 1
    assert {"accepted", "damaged", "type", "encrypted"} <= set(outcomes)
