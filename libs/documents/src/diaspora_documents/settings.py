"""How a service configures its document store and its upload limits.

Plain pydantic models: a service nests them in its own settings (its ``settings.py``
is the only module reading the environment), e.g. with
``env_nested_delimiter="__"``: ``CONSULAR_DOCUMENTS__BACKEND=s3``,
``CONSULAR_DOCUMENTS__S3__BUCKET=consular-documents``. Then :func:`open_store`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

if TYPE_CHECKING:
    from diaspora_documents.store import ObjectStore


class S3Settings(BaseModel):
    """An S3-compatible server: AWS S3, SeaweedFS, Ceph RGW, MinIO, a cloud's object storage."""

    model_config = ConfigDict(frozen=True)

    # None: AWS's own endpoint for the region; else the server's URL (https in production).
    endpoint_url: str | None = None
    bucket: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]+[a-z0-9]$")
    region: str = "us-east-1"
    # None: botocore's usual chain (environment, web identity, instance role).
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    # Several services may share a bucket: each under its own prefix ("consular/").
    key_prefix: str = Field(default="", pattern=r"^([a-z0-9_-]+/)*$")
    # "path": https://host/bucket/key (SeaweedFS, MinIO); "virtual": https://bucket.host/key.
    addressing_style: Literal["path", "virtual", "auto"] = "path"
    # Bytes held in memory per upload; a larger object is a multipart upload (S3's
    # smallest part, the last excepted, is 5 MiB).
    part_size: int = Field(default=8 * 1024 * 1024, ge=5 * 1024 * 1024)
    max_attempts: int = Field(default=3, ge=1, le=10)
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _credentials_in_pairs(self) -> S3Settings:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("give both access_key_id and secret_access_key, or neither")
        return self


class StoreSettings(BaseModel):
    """Which store: a local folder (the default, development) or S3-compatible."""

    model_config = ConfigDict(frozen=True)

    backend: Literal["local", "s3"] = "local"
    # The local store's folder (created, mode 0700). Relative: to the process's directory.
    local_root: Path = Path(".local/documents")
    s3: S3Settings | None = None

    @model_validator(mode="after")
    def _s3_given(self) -> StoreSettings:
        if self.backend == "s3" and self.s3 is None:
            raise ValueError("backend s3 needs the s3 settings (endpoint, bucket, credentials)")
        return self

    def production_problems(self) -> list[str]:
        """What this configuration lacks for production (a service refuses to start in
        production while this is not empty)."""
        problems = []
        if self.backend == "local":
            problems.append(
                "documents are kept in a local folder: use an S3-compatible store "
                "(replicated, backed up, encrypted at rest) in production"
            )
        elif self.s3 is not None and (self.s3.endpoint_url or "").startswith("http://"):
            problems.append("the S3 endpoint is plain http: documents would travel in clear")
        return problems


async def open_store(settings: StoreSettings) -> ObjectStore:
    """The store the settings name, ready to use (call its ``close()`` at shutdown)."""
    if settings.backend == "s3":
        from diaspora_documents.s3 import S3ObjectStore

        assert settings.s3 is not None  # the validator checked it
        return await S3ObjectStore.open(settings.s3)
    from diaspora_documents.local import LocalObjectStore

    return LocalObjectStore(settings.local_root)
