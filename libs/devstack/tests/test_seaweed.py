"""`devstack s3`: a developer's S3-compatible server, its buckets made, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from diaspora_devstack.testing import free_port, wait_until
from diaspora_documents.s3 import S3ObjectStore
from diaspora_documents.settings import S3Settings
from diaspora_documents.store import StoreUnavailable


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _start(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _credentials(folder: Path) -> dict[str, str]:
    return dict(json.loads((folder / "credentials.json").read_text()))


@pytest.mark.slow
async def test_devstack_s3_serves_its_bucket_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    folder = tmp_path / "s3"
    command = [sys.executable, "-m", "diaspora_devstack.cli", "s3", "--port", str(port)]
    process = _start([*command, "--folder", str(folder), "--bucket", "evidence"])
    store: S3ObjectStore | None = None
    try:
        await wait_until(lambda: (folder / "credentials.json").exists(), timeout=30)
        saved = _credentials(folder)
        assert (folder / "credentials.json").stat().st_mode & 0o077 == 0
        store = await S3ObjectStore.open(
            S3Settings(
                endpoint_url=f"http://127.0.0.1:{port}",
                bucket="evidence",
                access_key_id=saved["access_key_id"],
                secret_access_key=SecretStr(saved["secret"]),
            )
        )

        async def stored() -> bool:
            assert store is not None
            try:
                await store.put("hello", _one(b"hi"), content_type="text/plain")
            except StoreUnavailable:
                return False
            return True

        await wait_until(stored, timeout=60, interval=0.5, message="a write to the bucket")
        assert await (await store.get("hello")).read() == b"hi"
        process.send_signal(signal.SIGTERM)
        # weed takes about 15 s to stop gracefully; `devstack s3` gives it 30 s, then kills it.
        assert await asyncio.to_thread(process.wait, 45) == 0
        assert not _listening(port)
    finally:
        if store is not None:
            await store.close()
        if process.poll() is None:
            process.kill()
            process.wait()
        output = process.stdout.read().decode() if process.stdout else ""
    assert f"http://127.0.0.1:{port}" in output
