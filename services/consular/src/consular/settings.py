"""Consular settings: environment variables prefixed ``CONSULAR_``."""

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from diaspora_documents.settings import StoreSettings
from diaspora_service.settings import ServiceSettings


class DocumentLimitSettings(BaseSettings):
    """What one uploaded document may be (checked before anything is stored). Its own
    settings (no required variable): the HTTP app caps upload bodies from it when it is
    built, before the service's settings are read."""

    model_config = SettingsConfigDict(env_prefix="CONSULAR_DOCUMENT_", extra="ignore", frozen=True)

    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_pdf_pages: int = Field(default=30, ge=1)
    max_image_pixels: int = Field(default=40_000_000, ge=10_000)


class ConsularSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CONSULAR_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    http_port: int = 8104
    # The CloudEvents `source` of everything this service publishes.
    event_source: str = "/tg/diaspora/consular"
    # The worker flags overdue applications (and expires stale ones) this often (seconds).
    sla_interval_seconds: float = 60.0
    # A draft never submitted expires after this many days; an application waiting for
    # the applicant's information after this many.
    draft_expiry_days: int = 90
    information_expiry_days: int = 60
    # Retention of what is kept after a person's erasure (docs/consular.md, "Erasure and
    # retention"; periods to be confirmed by the ministry's counsel): a decided
    # application (and its expired credential) this many days after the decision, a
    # pseudonymised difficulty report this many days after it was filed. The worker's
    # retention job deletes them past it, every ``retention_interval_seconds``.
    retention_decision_days: int = 10 * 365
    retention_report_days: int = 5 * 365
    retention_interval_seconds: float = 6 * 3600.0

    # --- Issued credentials (consular.credentials; docs/consular.md "Credentials") ----
    # The ministry's Ed25519 signing key (PKCS#8 PEM): the text itself (a secret store's
    # variable; wins), or a file. In development and test the file is created (mode 0600)
    # when absent; in production the API refuses to start without one of them (only the
    # API loads it: consular.signing_keys.load_key_ring; the relay and worker never do).
    credential_signing_key: SecretStr | None = None
    credential_signing_key_file: Path = Path(".local/secrets/consular-credential-key.pem")
    # Earlier keys still published in the JWKS after a rotation (PEM files, public or
    # private; comma-separated): credentials they signed keep verifying; only the current
    # key signs.
    credential_previous_key_files: Annotated[tuple[Path, ...], NoDecode] = ()
    # The `iss` claim of every credential.
    credential_issuer: str = "https://diaspora.gouv.tg/consular"
    consular_card_validity_days: int = 5 * 365
    e_visa_validity_days: int = 90

    # --- Uploaded documents (consular.documents; docs/consular.md "Documents") ---------
    # Where their bytes are kept: CONSULAR_DOCUMENTS__BACKEND=local|s3,
    # CONSULAR_DOCUMENTS__LOCAL_ROOT, CONSULAR_DOCUMENTS__S3__BUCKET, ... (production: s3).
    documents: StoreSettings = StoreSettings(local_root=Path(".local/consular-documents"))
    # What one upload may be: CONSULAR_DOCUMENT_MAX_BYTES, ..._MAX_PDF_PAGES,
    # ..._MAX_IMAGE_PIXELS (DocumentLimitSettings). Uploads are spooled in the system's
    # temporary folder unless a folder is named.
    document_limits: DocumentLimitSettings = Field(default_factory=lambda: DocumentLimitSettings())
    document_spool_dir: Path | None = None
    # Documents per application, and attachments per difficulty report.
    documents_per_case: int = Field(default=30, ge=1, le=200)

    @field_validator("credential_previous_key_files", mode="before")
    @classmethod
    def _comma_separated_paths(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(Path(part.strip()) for part in value.split(",") if part.strip())
        return value
