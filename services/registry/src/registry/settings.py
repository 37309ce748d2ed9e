"""Registry settings: environment variables prefixed ``REGISTRY_``."""

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from diaspora_service.settings import ServiceSettings
from registry.crypto import (
    DEVELOPMENT_KEY_ID,
    DEVELOPMENT_KEYS,
    InvalidDocumentKeys,
    is_development_key,
    parse_keys,
)


class RegistrySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRY_", extra="ignore", frozen=True)

    http_port: int = 8101
    # The CloudEvents `source` of everything this service publishes.
    event_source: str = "/tg/diaspora/registry"
    # At most this many rows in one CSV export.
    export_max_rows: int = 50_000
    # Statistics (docs/registry.md): cells under this count are suppressed; whether a member
    # is counted only with their consent to statistics (default: unless they refused it).
    statistics_min_cell: int = Field(default=5, ge=1)
    statistics_require_consent: bool = False
    # Update campaign: profiles not confirmed for this many months are marked stale.
    stale_after_months: int = Field(default=12, ge=1)
    stale_check_interval_seconds: float = Field(default=3600.0, gt=0)
    stale_batch_size: int = Field(default=500, ge=1, le=10_000)
    # Duplicate pairs scoring at least this are flagged for review (registry.duplicates.scoring),
    # on every registration and import.
    duplicate_threshold: float = Field(default=0.6, gt=0, le=1)
    # Kafka consumers of the read models in one registry-worker, each owning some of the
    # partitions of registry.members (records of one member stay in order).
    read_model_workers: int = Field(default=3, ge=1, le=32)
    # Keys encrypting nationality document numbers at rest: "id:base64,id:base64" (AES-256,
    # 32 bytes each). Keep retired keys listed until `registry-rekey` has moved every number
    # to the active one (docs/runbooks/rotate-keys.md). The default is public: development only.
    document_keys: str = DEVELOPMENT_KEYS
    # Which of document_keys encrypts new numbers.
    document_key_id: str = DEVELOPMENT_KEY_ID

    @model_validator(mode="after")
    def _document_keys_are_usable(self) -> Self:
        try:
            keys = parse_keys(self.document_keys)
        except InvalidDocumentKeys as error:
            raise ValueError(f"REGISTRY_DOCUMENT_KEYS: {error}") from None
        if self.document_key_id not in keys:
            raise ValueError(
                f"REGISTRY_DOCUMENT_KEY_ID {self.document_key_id!r} "
                "is not in REGISTRY_DOCUMENT_KEYS"
            )
        if self.environment == "production" and is_development_key(keys):
            raise ValueError(
                "production mode refuses the development document key (it is public): "
                "set REGISTRY_DOCUMENT_KEYS and REGISTRY_DOCUMENT_KEY_ID"
            )
        return self
