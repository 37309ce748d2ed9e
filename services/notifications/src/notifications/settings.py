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
    # Kafka consumers of the registry's member topic (each owns some partitions; one
    # partition's records stay in order): registrations of different partitions are
    # handled concurrently. The other topics have one consumer each.
    consumer_workers: int = 3
    max_attempts: int = 6
    # First retry after this many seconds, doubling each attempt, capped at retry_max_delay.
    retry_first_delay: float = 2.0
    retry_max_delay: float = 600.0

    # SMS through an HTTP provider (none configured: the channel is unavailable).
    # The payload is a JSON template: $to, $text and $reference are replaced
    # (JSON-escaped); the auth header is sent as is (e.g. "Authorization: Bearer ...").
    sms_provider_url: str | None = None
    sms_auth_header: str = "Authorization"
    sms_auth_value: str | None = None
    sms_payload_template: str = '{"to": $to, "text": $text, "reference": $reference}'
    sms_timeout: float = 5.0
    # Tries within one attempt on 5xx and timeouts, with backoff, before the delivery
    # is rescheduled; a 4xx is a permanent failure at once.
    sms_http_tries: int = 3
    sms_senders: int = 2

    # Campaigns: default messages per second handed to the channels, rows per batch.
    campaign_rate_per_second: int = 50
    campaign_batch_size: int = 500
    campaign_poll_interval: float = 1.0
    # Campaign emails sent per sender transaction (one commit for the batch). A crash
    # between the server's acceptance and the commit can resend up to this many per
    # sender, with the same Message-IDs. Messages caused by events are always alone.
    campaign_send_batch: int = 20

    # Contact verification (notifications.contacts.verification): an email link valid this long,
    # an SMS code valid this long and tried at most this many times; sends (first and
    # re-sends) per address and per member within an hour.
    verification_link_base: str = "http://localhost:8080/api/notifications/contacts/email/confirm"
    verification_email_ttl_hours: float = 24.0
    verification_sms_ttl_minutes: float = 15.0
    verification_code_attempts: int = 5
    verification_sends_per_address_per_hour: int = 3
    verification_sends_per_member_per_hour: int = 6

    @model_validator(mode="after")
    def _smtp_secured_in_production(self) -> Self:
        if self.environment == "production" and not (self.smtp_tls or self.smtp_starttls):
            raise ValueError("production mode requires SMTP over TLS or STARTTLS")
        if (
            self.environment == "production"
            and self.sms_provider_url
            and not self.sms_provider_url.startswith("https://")
        ):
            raise ValueError("production mode requires an https SMS provider")
        return self

    @property
    def available_channels(self) -> frozenset[str]:
        channels = {"email", "inbox"}
        if self.sms_provider_url:
            channels.add("sms")
        return frozenset(channels)
