"""Returnees settings: environment variables prefixed ``RETURNEES_``."""

from typing import Self

from pydantic import SecretStr, model_validator
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

    # --- Awareness subscribers (returnees.subscribers; docs/returnees.md) ---------------
    # Where the links in messages point: this service through the gateway.
    public_base_url: str = "http://127.0.0.1:8080/api/returnees"
    # HMAC-SHA256 key of the one-step unsubscribe links (a secret store's variable);
    # production refuses to start without it (development and test use a published one).
    subscription_link_key: SecretStr | None = None
    subscription_confirm_ttl_hours: int = 24
    # Subscription requests per address and per client address and hour (429 beyond).
    subscriptions_per_address_per_hour: int = 3
    subscriptions_per_client_per_hour: int = 20

    def subscription_link_secret(self) -> str:
        if self.subscription_link_key is not None:
            return self.subscription_link_key.get_secret_value()
        return DEVELOPMENT_LINK_KEY

    @model_validator(mode="after")
    def _link_key_required_in_production(self) -> Self:
        if self.environment == "production" and self.subscription_link_key is None:
            raise ValueError(
                "production mode requires RETURNEES_SUBSCRIPTION_LINK_KEY (the key of the "
                "subscribers' unsubscribe links)"
            )
        return self


# Published in this repository: development and test only.
DEVELOPMENT_LINK_KEY = "development-only-unsubscribe-link-key"
