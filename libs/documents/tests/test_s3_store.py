"""The S3 store against a real S3-compatible server (SeaweedFS, started by the
``s3_server`` fixture on free ports): signed requests, multipart, checksums, atomicity."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiobotocore.session import get_session
from pydantic import SecretStr

from diaspora_devstack.testing import TcpForwarder
from diaspora_documents import testing as samples
from diaspora_documents.checks import UploadLimits, checked_upload
from diaspora_documents.s3 import S3ObjectStore
from diaspora_documents.settings import S3Settings, StoreSettings, open_store
from diaspora_documents.store import (
    ChecksumMismatch,
    InvalidKey,
    ObjectNotFound,
    ObjectStore,
    StoreUnavailable,
)

MiB = 1024 * 1024


async def _chunks(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _server_side(settings: S3Settings) -> tuple[list[str], list[str]]:
    """What the server holds under the test's prefix: object names and open multipart
    uploads, read with a client of its own (not through the store under test)."""
    assert settings.secret_access_key is not None
    async with get_session().create_client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key.get_secret_value(),
    ) as client:
        listed = await client.list_objects_v2(Bucket=settings.bucket, Prefix=settings.key_prefix)
        uploads = await client.list_multipart_uploads(
            Bucket=settings.bucket, Prefix=settings.key_prefix
        )
    names = sorted(o["Key"] for o in listed.get("Contents", []))
    pending = sorted(u["Key"] for u in uploads.get("Uploads", []))
    return names, pending


@pytest.fixture
async def store(s3_store_settings: S3Settings) -> AsyncIterator[S3ObjectStore]:
    opened = await S3ObjectStore.open(s3_store_settings.model_copy(update={"part_size": 5 * MiB}))
    yield opened
    await opened.close()


async def test_put_get_stat_exists_delete(store: S3ObjectStore) -> None:
    assert isinstance(store, ObjectStore)
    data = os.urandom(700_000)
    stored = await store.put(
        "members/m1/passport.pdf", _chunks(data), content_type="application/pdf"
    )
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    # What the server kept, read back by another client of the same settings.
    other = await S3ObjectStore.open(store.settings)
    try:
        assert await other.stat("members/m1/passport.pdf") == stored
        async with await other.get("members/m1/passport.pdf") as stream:
            assert stream.info == stored
            chunks = [chunk async for chunk in stream]
        assert b"".join(chunks) == data
        assert len(chunks) > 1  # streamed
    finally:
        await other.close()
    assert await store.exists("members/m1/passport.pdf")
    assert await store.delete("members/m1/passport.pdf") is True
    assert await store.delete("members/m1/passport.pdf") is False
    assert not await store.exists("members/m1/passport.pdf")
    with pytest.raises(ObjectNotFound):
        await store.get("members/m1/passport.pdf")
    with pytest.raises(ObjectNotFound):
        await store.stat("members/m1/passport.pdf")


@pytest.mark.parametrize("checksum_known", [True, False])
async def test_a_large_object_goes_up_in_parts_and_keeps_its_checksum(
    store: S3ObjectStore, checksum_known: bool
) -> None:
    data = os.urandom(12 * MiB + 123)  # three parts of 5 MiB at most
    sha = hashlib.sha256(data).hexdigest()
    stored = await store.put(
        "big.png", _chunks(data), content_type="image/png", sha256=sha if checksum_known else None
    )
    assert (stored.size, stored.sha256) == (len(data), sha)
    assert await store.stat("big.png") == stored
    assert await (await store.get("big.png")).read() == data
    # No temporary object nor unfinished upload is left behind.
    assert await _server_side(store.settings) == ([store.settings.key_prefix + "big.png"], [])


@pytest.mark.parametrize("size", [1000, 12 * MiB])
async def test_a_checksum_mismatch_stores_nothing(store: S3ObjectStore, size: int) -> None:
    data = os.urandom(size)
    with pytest.raises(ChecksumMismatch):
        await store.put("k", _chunks(data), content_type="text/plain", sha256="0" * 64)
    assert not await store.exists("k")
    assert await _server_side(store.settings) == ([], [])  # the multipart upload was aborted


async def test_a_put_that_fails_midway_leaves_the_old_object(store: S3ObjectStore) -> None:
    await store.put("k", _chunks(b"complete"), content_type="text/plain")

    async def broken() -> AsyncIterator[bytes]:
        yield os.urandom(6 * MiB)  # a first part is sent
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.put("k", broken(), content_type="text/plain")
    assert await (await store.get("k")).read() == b"complete"
    assert await _server_side(store.settings) == ([store.settings.key_prefix + "k"], [])


async def test_prefixes_keep_stores_apart(s3_store_settings: S3Settings) -> None:
    first = await S3ObjectStore.open(s3_store_settings)
    second = await S3ObjectStore.open(
        s3_store_settings.model_copy(update={"key_prefix": s3_store_settings.key_prefix + "b/"})
    )
    try:
        await first.put("doc", _chunks(b"first's"), content_type="text/plain")
        assert not await second.exists("doc")
        with pytest.raises(ObjectNotFound):
            await second.get("doc")
    finally:
        await first.close()
        await second.close()


async def test_requests_are_signed_and_a_wrong_secret_is_refused(
    s3_store_settings: S3Settings,
) -> None:
    wrong = await S3ObjectStore.open(
        s3_store_settings.model_copy(update={"secret_access_key": SecretStr("not-the-secret")})
    )
    try:
        with pytest.raises(StoreUnavailable, match="SignatureDoesNotMatch"):
            await wrong.put("x", _chunks(b"x"), content_type="text/plain")
        with pytest.raises(StoreUnavailable):
            await wrong.get("x")
    finally:
        await wrong.close()
    assert await _server_side(s3_store_settings) == ([], [])


async def test_a_bad_key_is_refused_before_any_request(store: S3ObjectStore) -> None:
    with pytest.raises(InvalidKey):
        await store.put("../other-prefix/x", _chunks(b"x"), content_type="text/plain")
    assert await _server_side(store.settings) == ([], [])


async def test_a_checked_upload_is_stored_with_its_detected_type(
    s3_store_settings: S3Settings, tmp_path: Path
) -> None:
    data = samples.pdf(2)
    store = await open_store(StoreSettings(backend="s3", s3=s3_store_settings))
    try:
        async with checked_upload(
            _chunks(data, 1000),
            filename="evidence.pdf",
            content_type="application/octet-stream",
            limits=UploadLimits(),
            spool_dir=tmp_path,
        ) as upload:
            stored = await store.put(
                "evidence/1",
                upload.chunks(),
                content_type=upload.content_type,
                sha256=upload.sha256,
            )
        assert stored.content_type == "application/pdf"
        assert await (await store.get("evidence/1")).read() == data
    finally:
        await store.close()


def test_settings_want_both_credentials_and_s3_settings() -> None:
    with pytest.raises(ValueError, match="both"):
        S3Settings(bucket="docs", access_key_id="only-the-id")
    with pytest.raises(ValueError, match="s3 settings"):
        StoreSettings(backend="s3")
    plain = StoreSettings(backend="s3", s3=S3Settings(bucket="docs", endpoint_url="http://s3:80"))
    assert any("plain http" in p for p in plain.production_problems())
    tls = StoreSettings(backend="s3", s3=S3Settings(bucket="docs", endpoint_url="https://s3"))
    assert tls.production_problems() == []


async def test_a_connection_broken_while_reading_is_store_unavailable(
    s3_store_settings: S3Settings,
) -> None:
    endpoint = httpx.URL(s3_store_settings.endpoint_url or "")
    forwarder = TcpForwarder(endpoint.host, endpoint.port or 80)
    await forwarder.open()
    store = await S3ObjectStore.open(
        s3_store_settings.model_copy(
            update={"endpoint_url": f"http://127.0.0.1:{forwarder.port}", "max_attempts": 1}
        )
    )
    try:
        await store.put("big", _chunks(os.urandom(24 * MiB)), content_type="image/png")
        stream = await store.get("big")
        chunks = aiter(stream)
        assert await anext(chunks)
        await forwarder.close()  # the server goes away mid-object
        with pytest.raises(StoreUnavailable, match="broke while reading"):
            async for _ in chunks:
                pass
    finally:
        await forwarder.close()
        await store.close()
