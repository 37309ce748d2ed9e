"""Returnees settings: environment variables prefixed ``RETURNEES_``."""

from pydantic_settings import SettingsConfigDict

from diaspora_service.settings import ServiceSettings


class ReturneesSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RETURNEES_", extra="ignore", frozen=True)

    http_port: int = 8105
    # The CloudEvents `source` of everything this service publishes.
    event_source: str = "/tg/diaspora/returnees"
    # The worker's periodic jobs (overdue follow-ups, ...) run this often (seconds).
    jobs_interval_seconds: float = 60.0
