"""The local folder store: streamed, atomic, checksummed, and no key reaches the file system."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from diaspora_documents.local import HEADER_SIZE, LocalObjectStore
from diaspora_documents.settings import StoreSettings, open_store
from diaspora_documents.store import (
    ChecksumMismatch,
    InvalidKey,
    ObjectNotFound,
    ObjectStore,
    check_key,
)


def _tree(folder: Path) -> list[Path]:
    return list(folder.rglob("*"))


async def _chunks(data: bytes, size: int = 100_000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_put_get_stat_exists_delete(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "docs")
    assert isinstance(store, ObjectStore)
    data = os.urandom(1_234_567)
    stored = await store.put(
        "applications/42/passport.pdf", _chunks(data), content_type="application/pdf"
    )
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert await store.exists("applications/42/passport.pdf")
    assert await store.stat("applications/42/passport.pdf") == stored
    async with await store.get("applications/42/passport.pdf") as stream:
        assert stream.info == stored
        chunks = [chunk async for chunk in stream]
    assert b"".join(chunks) == data
    assert len(chunks) > 1  # streamed, not one read
    assert await store.delete("applications/42/passport.pdf") is True
    assert await store.delete("applications/42/passport.pdf") is False
    assert not await store.exists("applications/42/passport.pdf")
    with pytest.raises(ObjectNotFound):
        await store.get("applications/42/passport.pdf")
    with pytest.raises(ObjectNotFound):
        await store.stat("applications/42/passport.pdf")


async def test_keys_a_and_a_slash_b_live_side_by_side(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    await store.put("a", _chunks(b"one"), content_type="text/plain")
    await store.put("a/b", _chunks(b"two"), content_type="text/plain")
    assert await (await store.get("a")).read() == b"one"
    assert await (await store.get("a/b")).read() == b"two"


async def test_a_put_replaces_the_object_whole(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    await store.put("k", _chunks(b"old" * 1000), content_type="image/png")
    await store.put("k", _chunks(b"new"), content_type="image/jpeg")
    stream = await store.get("k")
    assert stream.info.content_type == "image/jpeg"
    assert await stream.read() == b"new"


@pytest.mark.parametrize(
    "key",
    [
        "../outside",
        "a/../../etc/passwd",
        "/etc/passwd",
        "a//b",
        "a/./b",
        "a/",
        "",
        "a\\b",
        "a\x00b",
        "é",
        "x" * 513,
        "a/ b",
    ],
)
async def test_a_key_that_could_escape_or_differ_between_stores_is_refused(
    tmp_path: Path, key: str
) -> None:
    store = LocalObjectStore(tmp_path / "root")
    with pytest.raises(InvalidKey):
        await store.put(key, _chunks(b"x"), content_type="text/plain")
    for call in (store.get, store.stat, store.exists, store.delete):
        with pytest.raises(InvalidKey):
            await call(key)
    assert not (tmp_path / "outside").exists()
    files = [p for p in (tmp_path / "root").rglob("*") if p.is_file()]
    assert files == []


def test_valid_keys() -> None:
    assert (
        check_key("consular/2026/app-1_a.b/evidence.pdf") == "consular/2026/app-1_a.b/evidence.pdf"
    )
    assert check_key("..a/b..") == "..a/b.."


async def test_no_file_is_named_after_its_key_and_files_are_private(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    await store.put("members/m1/passport.pdf", _chunks(b"%PDF-1.7"), content_type="application/pdf")
    names = [p.name for p in _tree(tmp_path)]
    assert not any("passport" in name or "members" in name for name in names)
    path = store.path_of("members/m1/passport.pdf")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(tmp_path.joinpath("objects").stat().st_mode) == 0o700
    assert path.stat().st_size == HEADER_SIZE + len(b"%PDF-1.7")


async def test_a_checksum_mismatch_stores_nothing(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    data = b"the bytes sent"
    with pytest.raises(ChecksumMismatch):
        await store.put("k", _chunks(data), content_type="text/plain", sha256="0" * 64)
    assert not await store.exists("k")
    assert list((tmp_path / "tmp").iterdir()) == []
    good = hashlib.sha256(data).hexdigest()
    assert (await store.put("k", _chunks(data), content_type="text/plain", sha256=good)).size == 14


async def test_a_put_that_fails_midway_leaves_the_old_object_and_no_part(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    await store.put("k", _chunks(b"complete"), content_type="text/plain")

    async def broken() -> AsyncIterator[bytes]:
        yield b"half of "
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.put("k", broken(), content_type="text/plain")
    assert await (await store.get("k")).read() == b"complete"
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_readers_never_see_a_partial_object_while_it_is_replaced(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    old, new = b"a" * 2_000_000, b"b" * 2_000_000
    await store.put("k", _chunks(old), content_type="text/plain")
    seen: set[bytes] = set()

    async def read_often() -> None:
        for _ in range(30):
            seen.add(await (await store.get("k")).read())
            await asyncio.sleep(0)

    await asyncio.gather(read_often(), store.put("k", _chunks(new, 10_000), content_type="x/y"))
    assert seen <= {old, new}
    assert await (await store.get("k")).read() == new


async def test_settings_open_the_local_store_by_default(tmp_path: Path) -> None:
    settings = StoreSettings(local_root=tmp_path / "d")
    store = await open_store(settings)
    assert isinstance(store, LocalObjectStore)
    assert settings.production_problems()  # a local folder is not for production
    await store.close()
