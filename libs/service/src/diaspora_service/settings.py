"""Settings from environment variables, one prefix per service, checked at start-up."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]

DEV_DATABASE_HOST = "127.0.0.1:55432"


class ServiceSettings(BaseSettings):
    """Base settings; a service subclasses it with ``env_prefix`` set to its name."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    environment: Environment = "development"
    database_url: str
    kafka_bootstrap: str = "127.0.0.1:19092"
    # Keeps environments (and test runs) apart on a shared Kafka cluster.
    topic_prefix: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    json_logs: bool = True

    @model_validator(mode="after")
    def _refuse_development_defaults_in_production(self) -> Self:
        if self.environment == "production" and (
            DEV_DATABASE_HOST in self.database_url or "postgres@" in self.database_url
        ):
            raise ValueError(
                "production mode refuses the development database (password-less postgres)"
            )
        return self

    @property
    def async_database_url(self) -> str:
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url[len(prefix) :]
        return url
