"""The object store as a local folder: development, tests, a single-machine deployment.

Layout under the root (created with mode 0700; files 0600: documents are personal data):

- ``objects/<hh>/<sha256 of the key>``: one file per object. The file name is the hash
  of the key, never the key itself, so no key reaches the file system as a path (no
  traversal, no ``a`` against ``a/b`` clash, no case folding surprises). The file is a
  fixed 1024-byte header (``DIASPORA-OBJECT 1`` and a JSON line: key, size, content
  type, SHA-256, padded with spaces) followed by the object's bytes.
- ``tmp/``: objects being written. A put writes there, fsyncs, then renames onto the
  final name (atomic on one file system): a reader sees the old object or the new one,
  never a part; a put that fails or is cancelled leaves nothing but its temporary file,
  which it removes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import IO

from diaspora_documents.store import (
    READ_CHUNK,
    ChecksumMismatch,
    Digest,
    ObjectNotFound,
    ObjectStream,
    StoredObject,
    check_key,
    check_sha256,
)

_MAGIC = b"DIASPORA-OBJECT 1\n"
HEADER_SIZE = 1024


def _header(info: StoredObject) -> bytes:
    meta = json.dumps(
        {
            "key": info.key,
            "size": info.size,
            "content_type": info.content_type,
            "sha256": info.sha256,
        },
        separators=(",", ":"),
    ).encode()
    body = _MAGIC + meta
    if len(body) + 1 > HEADER_SIZE:
        raise ValueError("the content type is too long to be stored")
    return body + b" " * (HEADER_SIZE - len(body) - 1) + b"\n"


def _parse_header(raw: bytes, key: str) -> StoredObject:
    if len(raw) != HEADER_SIZE or not raw.startswith(_MAGIC):
        raise OSError(f"the stored object {key!r} is damaged (no header)")
    meta = json.loads(raw[len(_MAGIC) :].strip())
    if meta["key"] != key:
        raise OSError(f"the stored object {key!r} holds another key's bytes")
    return StoredObject(
        key=meta["key"],
        size=int(meta["size"]),
        content_type=meta["content_type"],
        sha256=meta["sha256"],
    )


class LocalObjectStore:
    """:class:`diaspora_documents.store.ObjectStore` in a folder (see the module)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._objects = self.root / "objects"
        self._tmp = self.root / "tmp"
        for folder in (self.root, self._objects, self._tmp):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def path_of(self, key: str) -> Path:
        """The file holding ``key``'s object (whether or not it exists)."""
        name = hashlib.sha256(check_key(key).encode()).hexdigest()
        return self._objects / name[:2] / name

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str,
        sha256: str | None = None,
    ) -> StoredObject:
        final = self.path_of(key)
        expected = check_sha256(sha256)
        _header(StoredObject(key, 0, content_type, "0" * 64))  # refuses a too long type now
        temporary = self._tmp / f"{secrets.token_hex(16)}.part"
        digest = Digest()
        file = await asyncio.to_thread(_create, temporary)
        try:
            async for chunk in chunks:
                if chunk:
                    digest.update(chunk)
                    await asyncio.to_thread(file.write, chunk)
            actual = digest.hexdigest()
            if expected is not None and actual != expected:
                raise ChecksumMismatch(key, expected, actual)
            info = StoredObject(key, digest.size, content_type, actual)
            await asyncio.to_thread(_finish, file, _header(info), temporary, final)
            return info
        except BaseException:
            file.close()
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            raise

    async def get(self, key: str) -> ObjectStream:
        path = self.path_of(key)
        try:
            file = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        try:
            info = _parse_header(await asyncio.to_thread(file.read, HEADER_SIZE), key)
        except BaseException:
            file.close()
            raise
        return ObjectStream(info, _read(file))

    async def stat(self, key: str) -> StoredObject:
        path = self.path_of(key)
        try:
            return await asyncio.to_thread(_stat, path, key)
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path_of(key).is_file)

    async def delete(self, key: str) -> bool:
        path = self.path_of(key)
        try:
            await asyncio.to_thread(path.unlink)
        except FileNotFoundError:
            return False
        return True

    async def close(self) -> None:
        return None


def _create(path: Path) -> IO[bytes]:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    file = os.fdopen(descriptor, "wb")
    file.write(b"\0" * HEADER_SIZE)  # the header goes here once the checksum is known
    return file


def _finish(file: IO[bytes], header: bytes, temporary: Path, final: Path) -> None:
    file.seek(0)
    file.write(header)
    file.flush()
    os.fsync(file.fileno())
    file.close()
    final.parent.mkdir(mode=0o700, exist_ok=True)
    os.replace(temporary, final)
    directory = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _stat(path: Path, key: str) -> StoredObject:
    with path.open("rb") as file:
        return _parse_header(file.read(HEADER_SIZE), key)


async def _read(file: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(file.read, READ_CHUNK):
            yield chunk
    finally:
        file.close()
