"""The object store: where documents' bytes live, behind one asynchronous interface.

Keys are chosen by the caller (a service names its objects, e.g.
``applications/<id>/<document id>``): a key is 1 to 512 characters of ``a-z A-Z 0-9 . _ -``
in segments separated by single ``/``, no segment ``.`` or ``..``, no leading or
trailing ``/``. Anything else is :class:`InvalidKey` before the store is touched, so a
key can never name a path outside a local store's folder, nor differ between the
local folder and S3.

Every object is written whole or not at all (a reader never sees half an object) and
carries its content type and its SHA-256, computed while the bytes stream in; a caller
who knows the checksum beforehand passes it and a mismatch stores nothing
(:class:`ChecksumMismatch`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

KEY_MAX_LENGTH = 512
_SEGMENT = r"[A-Za-z0-9_.-]+"
_KEY = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# What a stream's chunks are cut to when a store reads (local folder and S3 alike).
READ_CHUNK = 256 * 1024


class StoreError(Exception):
    """Something about an object-store operation the caller can act on."""


class InvalidKey(StoreError, ValueError):
    """The key is not of the form every store accepts (see the module)."""


class ObjectNotFound(StoreError, KeyError):
    """No object under this key."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"no object under key {self.key!r}"


class ChecksumMismatch(StoreError):
    """The bytes received do not have the SHA-256 the caller expected: nothing was stored."""

    def __init__(self, key: str, expected: str, actual: str) -> None:
        super().__init__(f"{key}: expected SHA-256 {expected}, received {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class StoreUnavailable(StoreError):
    """The store could not be reached or refused the operation (not the caller's fault)."""


def check_key(key: str) -> str:
    """``key`` if every store accepts it, else :class:`InvalidKey`."""
    if not isinstance(key, str) or not 0 < len(key) <= KEY_MAX_LENGTH:
        raise InvalidKey(f"a key has 1 to {KEY_MAX_LENGTH} characters")
    if not _KEY.fullmatch(key):
        raise InvalidKey(f"{key!r}: a key is segments of A-Z a-z 0-9 . _ - separated by single '/'")
    if any(segment in (".", "..") for segment in key.split("/")):
        raise InvalidKey(f"{key!r}: '.' and '..' are not segments of a key")
    return key


def check_sha256(value: str | None) -> str | None:
    """A SHA-256 as 64 lowercase hexadecimal digits (or None)."""
    if value is None:
        return None
    if not _SHA256.fullmatch(value):
        raise ValueError("a SHA-256 is given as 64 lowercase hexadecimal digits")
    return value


@dataclass(frozen=True)
class StoredObject:
    """What the store knows of an object: never its bytes."""

    key: str
    size: int
    content_type: str
    sha256: str


@dataclass(frozen=True)
class ObjectStream:
    """An object being read: its description and its bytes, chunk by chunk.

    Iterate it once (``async for chunk in stream``); :meth:`aclose` (or ``async with``)
    releases the file or connection when the iteration is left early."""

    info: StoredObject
    _chunks: AsyncIterator[bytes]

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    async def read(self) -> bytes:
        """Every remaining byte (for small objects: tests, thumbnails)."""
        return b"".join([chunk async for chunk in self._chunks])

    async def aclose(self) -> None:
        closer = getattr(self._chunks, "aclose", None)
        if closer is not None:
            await closer()

    async def __aenter__(self) -> ObjectStream:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()


@runtime_checkable
class ObjectStore(Protocol):
    """Where documents are kept. Every method validates the key first (:func:`check_key`)."""

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str,
        sha256: str | None = None,
    ) -> StoredObject:
        """Store the bytes of ``chunks`` under ``key`` (replacing any object there), whole
        or not at all. ``sha256``: what the caller expects; a mismatch stores nothing and
        raises :class:`ChecksumMismatch`."""
        ...

    async def get(self, key: str) -> ObjectStream:
        """The object under ``key``, streamed; :class:`ObjectNotFound` if there is none."""
        ...

    async def stat(self, key: str) -> StoredObject:
        """The object's description; :class:`ObjectNotFound` if there is none."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> bool:
        """Remove the object; True if there was one (deleting nothing is not an error)."""
        ...

    async def close(self) -> None:
        """Release connections (the store is not used afterwards)."""
        ...


class Digest:
    """SHA-256 and size of bytes as they pass."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self.size += len(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
