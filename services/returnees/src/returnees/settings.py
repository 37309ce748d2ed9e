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
    # Referrals (returnees.referrals): a partner acknowledges a referral within this many
    # days of it and reports its outcome within this many; past either, the worker's job
    # escalates it to the ministry.
    referral_acknowledge_days: int = 3
    referral_complete_days: int = 30
