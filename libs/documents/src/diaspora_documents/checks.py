"""Upload checks by content: what a file is, how large it is, and how large it would become.

Nothing the client says is trusted. The type comes from the file's first bytes (magic
numbers): PDF, JPEG and PNG are accepted, anything else is refused, and an executable
or script is named as such. The file's name and declared content type must agree with
what the bytes are (a PE renamed ``scan.pdf`` or sent as ``application/pdf`` is refused
for what it is; so is a PNG named ``.pdf``). The stored content type is the detected one.

Limits:

- size: counted while the bytes stream in, reading stops at ``max_bytes + 1``;
- type: decided from the first bytes, before the rest is read;
- PDF pages: counted from the page tree (pypdf, no page rendered), encrypted PDFs and
  PDFs with JavaScript, launch actions or embedded files are refused;
- image pixels: width x height x frames from the header (Pillow's lazy open: no pixel
  is decoded), so a 100 kB PNG announcing 50 000 x 50 000 is refused unread; a PNG's
  chunk checksums are verified (no decompression).

The structure is read in a process with memory and CPU limits
(:mod:`diaspora_documents.isolation`) unless ``isolate=False``. pypdf and Pillow are
imported with this module, so that the forked reader starts with them loaded.

Refusals are :class:`UploadRefused` with the HTTP status a service answers with, as a
problem (``diaspora_documents.problems``): 413 too large (bytes, pages, pixels, or the
structure needs more memory or time to read than allowed), 415 not an accepted type
(executables, mismatched names or types), 422 damaged, encrypted or active content.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import warnings
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Protocol

from PIL import Image, UnidentifiedImageError
from pypdf import PdfReader
from pypdf.errors import PdfReadError, PyPdfError
from pypdf.generic import DictionaryObject

from diaspora_documents.isolation import LimitExceeded, run_isolated
from diaspora_documents.store import READ_CHUNK, Digest


class Kind(StrEnum):
    PDF = "pdf"
    JPEG = "jpeg"
    PNG = "png"

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[self]


_MEDIA_TYPES = {Kind.PDF: "application/pdf", Kind.JPEG: "image/jpeg", Kind.PNG: "image/png"}
# Declared content types taken for each kind (aliases some browsers and scanners send).
_DECLARED = {
    "application/pdf": Kind.PDF,
    "application/x-pdf": Kind.PDF,
    "image/jpeg": Kind.JPEG,
    "image/jpg": Kind.JPEG,
    "image/pjpeg": Kind.JPEG,
    "image/png": Kind.PNG,
    "image/x-png": Kind.PNG,
}
# Declared types that say nothing (a client that does not know): accepted with any kind.
_UNSPECIFIED = {"", "application/octet-stream", "binary/octet-stream"}
_EXTENSIONS = {".pdf": Kind.PDF, ".jpg": Kind.JPEG, ".jpeg": Kind.JPEG, ".png": Kind.PNG}

# The bytes needed to tell a kind, or an executable, from the start of a file.
SNIFF_BYTES = 16
_MAGIC: list[tuple[bytes, Kind]] = [
    (b"%PDF-", Kind.PDF),
    (b"\xff\xd8\xff", Kind.JPEG),
    (b"\x89PNG\r\n\x1a\n", Kind.PNG),
]
# What a refused file looks like, named in the refusal (first match wins).
_KNOWN: list[tuple[bytes, str]] = [
    (b"\x7fELF", "an ELF executable"),
    (b"MZ", "a Windows executable (PE/DOS)"),
    (b"\xfe\xed\xfa\xce", "a Mach-O executable"),
    (b"\xfe\xed\xfa\xcf", "a Mach-O executable"),
    (b"\xce\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xca\xfe\xba\xbe", "a Mach-O universal binary or Java class"),
    (b"#!", "a script"),
    (b"\x00asm", "a WebAssembly module"),
    (b"PK\x03\x04", "a ZIP archive (or Office document)"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\xd0\xcf\x11\xe0", "an OLE document (old Office format)"),
    (b"GIF8", "a GIF image"),
    (b"RIFF", "a RIFF file (WebP, AVI, WAV)"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
]
_EXECUTABLES = {
    name
    for _, name in _KNOWN
    if "executable" in name or name in {"a script", "a WebAssembly module"}
}
_TEXT_MARKERS = (b"<!doctype html", b"<html", b"<script", b"<?xml", b"<svg", b"<?php", b"@echo")


class UploadRefused(Exception):
    """An upload the service refuses; ``status`` is the HTTP status of the problem to
    answer with, ``code`` a stable machine-readable reason, ``str()`` the detail."""

    status = 400
    title = "The upload is refused"

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


class TooLarge(UploadRefused):
    """413: more bytes than allowed, or more pages or pixels, or a structure that needs
    more memory or time to read than allowed."""

    status = 413
    title = "The document is too large"


class UnsupportedType(UploadRefused):
    """415: not a PDF, JPEG or PNG (by its bytes), or its name or declared type lies."""

    status = 415
    title = "This type of file is not accepted"


class Unreadable(UploadRefused):
    """422: of an accepted type but damaged, encrypted, or with active content."""

    status = 422
    title = "The document cannot be accepted"


@dataclass(frozen=True)
class UploadLimits:
    """What an upload may be; a service sets them per kind of document it receives."""

    max_bytes: int = 10 * 1024 * 1024
    max_pdf_pages: int = 50
    # 40 megapixels: a phone's photo (12 to 24 Mpx) or an A4 page scanned at 600 dpi (35 Mpx).
    max_image_pixels: int = 40_000_000
    allowed: frozenset[Kind] = frozenset(Kind)
    # Refuse PDFs with JavaScript, launch actions or embedded files (identity evidence
    # and forms need none of them).
    refuse_active_pdf: bool = True
    # What reading the structure may take (the isolated process's limits).
    inspect_memory_bytes: int = 256 * 1024 * 1024
    inspect_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_pdf_pages < 1 or self.max_image_pixels < 1:
            raise ValueError("limits are positive")
        if not self.allowed:
            raise ValueError("at least one kind of document is allowed")


@dataclass(frozen=True)
class Inspection:
    """What the structure says: pages of a PDF, pixel size of an image."""

    kind: Kind
    pages: int | None = None
    width: int | None = None
    height: int | None = None
    frames: int | None = None


def sniff(head: bytes) -> Kind | None:
    """The accepted kind the first bytes announce, or None."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return None


def describe(head: bytes) -> str:
    """What a refused file looks like, for the refusal's text."""
    for magic, name in _KNOWN:
        if head.startswith(magic):
            return name
    lowered = head.lstrip().lower()
    if any(lowered.startswith(marker) for marker in _TEXT_MARKERS):
        return "markup or a script (HTML, XML, SVG, PHP, batch)"
    if not head:
        return "an empty file"
    return "a file of unknown type"


def _declared_kind(content_type: str | None) -> tuple[str, Kind | None]:
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    return declared, _DECLARED.get(declared)


def check_type(
    head: bytes,
    *,
    filename: str | None = None,
    content_type: str | None = None,
    allowed: frozenset[Kind] = frozenset(Kind),
) -> Kind:
    """The kind of a file from its first bytes (at least :data:`SNIFF_BYTES` of them,
    unless the file is shorter), checked against its name and declared type:
    :class:`UnsupportedType` when it is not an allowed kind or they disagree."""
    kind = sniff(head)
    name = os.path.basename((filename or "").replace("\\", "/"))
    extension = os.path.splitext(name)[1].lower()
    if kind is None or kind not in allowed:
        what = describe(head) if kind is None else f"a {kind.value.upper()} file"
        code = "executable" if what in _EXECUTABLES else "type"
        said = f" named {name!r}" if name else ""
        raise UnsupportedType(
            code,
            f"the file{said} is {what}; accepted: "
            + ", ".join(sorted(k.value.upper() for k in allowed)),
        )
    # A name without extension ("blob", as browsers name pasted or camera files) says
    # nothing; any other extension must be the kind's.
    if extension and extension not in _EXTENSIONS:
        raise UnsupportedType(
            "mismatch",
            f"the file is a {kind.value.upper()} but its name {name!r} does not end "
            f"with {', '.join(e for e, k in _EXTENSIONS.items() if k == kind)}",
        )
    if extension and _EXTENSIONS[extension] != kind:
        raise UnsupportedType(
            "mismatch",
            f"the file is a {kind.value.upper()} but its name {name!r} says "
            f"{_EXTENSIONS[extension].value.upper()}",
        )
    declared, declared_kind = _declared_kind(content_type)
    if declared not in _UNSPECIFIED and declared_kind != kind:
        raise UnsupportedType(
            "mismatch",
            f"the file is a {kind.value.upper()} but was sent as {declared!r}",
        )
    return kind


# -- structure ---------------------------------------------------------------------------


def inspect_file(path: str | os.PathLike[str], kind: Kind, limits: UploadLimits) -> Inspection:
    """Read the structure of a file already known to be ``kind`` and check its pages or
    pixels (synchronous, in this process: see :func:`inspect` for the isolated call).
    Whatever a parser raises on a malformed file is :class:`Unreadable` (never another
    exception: a bad file is the client's 4xx, not the service's 500); ``MemoryError``
    passes (the isolated reader reports it as :class:`TooLarge`)."""
    try:
        if kind is Kind.PDF:
            return _inspect_pdf(Path(path), limits)
        return _inspect_image(Path(path), kind, limits)
    except (UploadRefused, MemoryError):
        raise
    except RecursionError:
        raise Unreadable("damaged", f"the {kind.value.upper()} is nested too deeply") from None
    except Exception as error:
        raise Unreadable(
            "damaged",
            f"the {kind.value.upper()} cannot be read ({type(error).__name__}: {str(error)[:160]})",
        ) from None


def _inspect_pdf(path: Path, limits: UploadLimits) -> Inspection:
    # A malformed upload is routine: pypdf's warnings about it (which quote the file's
    # bytes) stay out of the service's logs; what matters is raised.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(path, strict=False)
            if reader.is_encrypted:
                raise Unreadable(
                    "encrypted", "the PDF is encrypted (password protected): send it unprotected"
                )
            pages = len(reader.pages)
            if pages > limits.max_pdf_pages:
                raise TooLarge(
                    "pages", f"the PDF has {pages} pages, more than {limits.max_pdf_pages}"
                )
            if pages == 0:
                raise Unreadable("damaged", "the PDF has no page")
            if limits.refuse_active_pdf:
                active = _active_content(reader)
                if active:
                    raise Unreadable("active_content", f"the PDF contains {active}")
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise Unreadable("damaged", f"the PDF cannot be read: {error}") from None
    except RecursionError:
        raise Unreadable("damaged", "the PDF's structure is nested too deeply") from None
    return Inspection(Kind.PDF, pages=pages)


def _active_content(reader: object) -> str | None:
    """What in the PDF's catalogue runs or carries other files, if anything."""
    assert isinstance(reader, PdfReader)
    root = reader.trailer["/Root"].get_object()
    if not isinstance(root, DictionaryObject):
        raise ValueError("the catalogue is not a dictionary")
    names = root.get("/Names")
    names = names.get_object() if names is not None else DictionaryObject()
    if not isinstance(names, DictionaryObject):
        raise ValueError("the catalogue's /Names is not a dictionary")
    if "/JavaScript" in names:
        return "JavaScript"
    if "/EmbeddedFiles" in names:
        return "embedded files"
    actions = [root.get("/OpenAction"), root.get("/AA")]
    for action in actions:
        resolved = action.get_object() if action is not None else None
        if isinstance(resolved, DictionaryObject):
            text = repr(resolved)
            if "/JavaScript" in text or "/Launch" in text:
                return "an action run when it opens"
    return None


def _inspect_image(path: Path, kind: Kind, limits: UploadLimits) -> Inspection:
    formats = ["PNG"] if kind is Kind.PNG else ["JPEG"]
    try:
        with warnings.catch_warnings():
            # Pillow warns (DecompressionBombWarning) from 89 Mpx and raises from twice
            # that; the limit here is the service's, checked below.
            warnings.simplefilter("ignore")
            with Image.open(path, formats=formats) as image:
                width, height = image.size
                frames = int(getattr(image, "n_frames", 1) or 1)
                pixels = width * height * frames
                if pixels > limits.max_image_pixels:
                    raise TooLarge(
                        "pixels",
                        f"the image is {width} x {height} pixels"
                        + (f" x {frames} frames" if frames > 1 else "")
                        + f", more than {limits.max_image_pixels} pixels",
                    )
                if width == 0 or height == 0:
                    raise Unreadable("damaged", "the image has no pixel")
                if kind is Kind.PNG:
                    image.verify()  # every chunk's CRC, up to IEND; nothing decompressed
    except Image.DecompressionBombError as error:
        raise TooLarge("pixels", f"the image is too large: {error}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise Unreadable("damaged", f"the image cannot be read: {error}") from None
    return Inspection(kind, width=width, height=height, frames=frames)


async def inspect(
    path: str | os.PathLike[str], kind: Kind, limits: UploadLimits, *, isolate: bool = True
) -> Inspection:
    """:func:`inspect_file` in a process with the limits' memory and time (``isolate``),
    else in a thread. Exhausting them is :class:`TooLarge` (code ``expands``)."""
    if not isolate:
        return await asyncio.to_thread(inspect_file, path, kind, limits)
    try:
        return await run_isolated(
            inspect_file,
            str(path),
            kind,
            limits,
            memory=limits.inspect_memory_bytes,
            seconds=limits.inspect_seconds,
        )
    except LimitExceeded as error:
        raise TooLarge(
            "expands",
            f"reading the {kind.value.upper()}'s structure needs more {error} than allowed",
        ) from None


# -- receiving an upload -----------------------------------------------------------------


class AsyncReadable(Protocol):
    async def read(self, size: int = -1, /) -> bytes: ...


async def read_chunks(source: AsyncReadable, size: int = READ_CHUNK) -> AsyncIterator[bytes]:
    """The chunks of anything with an asynchronous ``read(n)`` (FastAPI's ``UploadFile``)."""
    while chunk := await source.read(size):
        yield chunk


@dataclass
class CheckedUpload:
    """An upload that passed every check, spooled in a private temporary file (deleted
    when the ``checked_upload`` block ends): its kind, the content type to store it with,
    its size and SHA-256, and what its structure says."""

    path: Path
    kind: Kind
    size: int
    sha256: str
    inspection: Inspection
    filename: str | None = None

    @property
    def content_type(self) -> str:
        return self.kind.media_type

    async def chunks(self) -> AsyncIterator[bytes]:
        """The bytes, for :meth:`diaspora_documents.store.ObjectStore.put`."""
        file = await asyncio.to_thread(self.path.open, "rb")
        try:
            while chunk := await asyncio.to_thread(file.read, READ_CHUNK):
                yield chunk
        finally:
            file.close()


async def _spool(
    chunks: AsyncIterable[bytes],
    file: IO[bytes],
    *,
    filename: str | None,
    content_type: str | None,
    limits: UploadLimits,
) -> tuple[Kind, Digest]:
    digest = Digest()
    head = b""
    kind: Kind | None = None
    async for chunk in chunks:
        if not chunk:
            continue
        digest.update(chunk)
        if digest.size > limits.max_bytes:
            raise TooLarge("bytes", f"the file is larger than {limits.max_bytes} bytes")
        if kind is None:
            head += chunk
            if len(head) >= SNIFF_BYTES:
                kind = check_type(
                    head, filename=filename, content_type=content_type, allowed=limits.allowed
                )
        await asyncio.to_thread(file.write, chunk)
    if kind is None:
        kind = check_type(
            head, filename=filename, content_type=content_type, allowed=limits.allowed
        )
    await asyncio.to_thread(file.flush)
    return kind, digest


@contextlib.asynccontextmanager
async def checked_upload(
    chunks: AsyncIterable[bytes],
    *,
    filename: str | None = None,
    content_type: str | None = None,
    limits: UploadLimits = UploadLimits(),
    spool_dir: str | os.PathLike[str] | None = None,
    isolate: bool = True,
) -> AsyncIterator[CheckedUpload]:
    """Receive an upload and check it (see the module); yields the :class:`CheckedUpload`,
    or raises :class:`UploadRefused` having read no more than needed to refuse (the type
    from the first bytes, the size up to ``max_bytes + 1``). The spooled copy (mode 0600
    in ``spool_dir``, else the system's temporary folder) is deleted when the block ends,
    however it ends."""
    descriptor, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=spool_dir)
    path = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as file:
            kind, digest = await _spool(
                chunks, file, filename=filename, content_type=content_type, limits=limits
            )
        inspection = await inspect(path, kind, limits, isolate=isolate)
        yield CheckedUpload(
            path=path,
            kind=kind,
            size=digest.size,
            sha256=digest.hexdigest(),
            inspection=inspection,
            filename=filename,
        )
    finally:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(path.unlink)
