"""Notifications settings: environment variables prefixed ``NOTIFICATIONS_``."""

from typing import Self

from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from diaspora_service.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_", extra="ignore", frozen=True)

    http_port: int = 8102
    event_source: str = "/tg/diaspora/notifications"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_starttls: bool = False
    smtp_tls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_timeout: float = 10.0
    mail_from: str = "Ministère des Togolais de l'extérieur <no-reply@diaspora.gouv.tg>"
    # Concurrent senders, each with its own SMTP connection.
    email_senders: int = 4
    max_attempts: int = 6

    @model_validator(mode="after")
    def _smtp_secured_in_production(self) -> Self:
        if self.environment == "production" and not (self.smtp_tls or self.smtp_starttls):
            raise ValueError("production mode requires SMTP over TLS or STARTTLS")
        return self
