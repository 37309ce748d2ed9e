"""Matching settings: environment variables prefixed ``MATCHING_``."""

from pydantic_settings import SettingsConfigDict

from diaspora_service.settings import ServiceSettings


class MatchingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MATCHING_", extra="ignore", frozen=True)

    http_port: int = 8103
    # The CloudEvents `source` of everything this service publishes.
    event_source: str = "/tg/diaspora/matching"
    # The worker closes needs whose dates have passed this often (seconds).
    expiry_interval_seconds: float = 60.0
