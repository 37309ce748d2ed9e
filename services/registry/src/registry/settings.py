"""Registry settings: environment variables prefixed ``REGISTRY_``."""

from pydantic_settings import SettingsConfigDict

from diaspora_service.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRY_", extra="ignore", frozen=True)

    http_port: int = 8101
    # The CloudEvents `source` of everything this service publishes.
    event_source: str = "/tg/diaspora/registry"
    # At most this many rows in one CSV export.
    export_max_rows: int = 50_000
