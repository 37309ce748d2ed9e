"""Consular settings: environment variables prefixed ``CONSULAR_``."""

from pydantic_settings import SettingsConfigDict

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
