"""Consular settings: environment variables prefixed ``CONSULAR_``."""

from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from diaspora_service.settings import ServiceSettings


class ConsularSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CONSULAR_", extra="ignore", frozen=True)

    http_port: int = 8104
    # The CloudEvents `source` of everything this service publishes.
    event_source: str = "/tg/diaspora/consular"
    # The worker flags overdue applications (and expires stale ones) this often (seconds).
    sla_interval_seconds: float = 60.0
    # A draft never submitted expires after this many days; an application waiting for
    # the applicant's information after this many.
    draft_expiry_days: int = 90
    information_expiry_days: int = 60

    # --- Issued credentials (consular.credentials; docs/consular.md "Credentials") ----
    # The ministry's Ed25519 signing key (PKCS#8 PEM): the text itself (a secret store's
    # variable; wins), or a file. In development and test the file is created (mode 0600)
    # when absent; production refuses to start without one of them.
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

    @field_validator("credential_previous_key_files", mode="before")
    @classmethod
    def _comma_separated_paths(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(Path(part.strip()) for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _production_has_a_signing_key(self) -> Self:
        if self.environment != "production" or self.credential_signing_key is not None:
            return self
        if not self.credential_signing_key_file.is_file():
            raise ValueError(
                "production mode needs the credential signing key: set "
                "CONSULAR_CREDENTIAL_SIGNING_KEY (PEM) or CONSULAR_CREDENTIAL_SIGNING_KEY_FILE "
                "to an existing file (no key is generated outside development and test)"
            )
        return self
