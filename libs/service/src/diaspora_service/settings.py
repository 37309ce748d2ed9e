"""Settings from environment variables, one prefix per service, checked at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

Environment = Literal["development", "test", "production"]

DEV_DATABASE_HOST = "127.0.0.1:55432"
# The embedded platform's development identity provider (`devstack idp`): refused in production.
DEV_OIDC_ISSUER = "http://127.0.0.1:8090/dev-idp"
DEV_ISSUER_MARK = "/dev-idp"


class ServiceSettings(BaseSettings):
    """Base settings; a service subclasses it with ``env_prefix`` set to its name."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    # No default: a service started without it refuses to start (fail closed). The
    # development defaults below (identity provider, database, registry's document key)
    # are accepted in `development` and `test` (the fixtures run on the embedded stack
    # with a local issuer); `production` refuses every one of them.
    environment: Environment
    database_url: str
    kafka_bootstrap: str = "127.0.0.1:19092"
    # Keeps environments (and test runs) apart on a shared Kafka cluster.
    topic_prefix: str = ""
    # Replication of the topics a service creates: 1 on one broker, 3 on a cluster.
    kafka_replication_factor: int = 1
    # Port of /health/* and /metrics for processes without an API (relay, worker).
    health_port: int | None = None
    # A consumer with lag whose committed offsets have not moved for this long is stuck.
    consumer_stuck_after_seconds: float = 60.0
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    json_logs: bool = True

    # OIDC: who issues the bearer tokens this service accepts (docs/security.md).
    oidc_issuer: str = DEV_OIDC_ISSUER
    oidc_audience: str = "diaspora-api"
    # Default: the `jwks_uri` of the issuer's discovery document.
    oidc_jwks_url: str | None = None
    oidc_leeway_seconds: float = 30.0
    oidc_jwks_max_age_seconds: float = 3600.0
    # A token naming an unknown key refetches the JWKS at most this often.
    oidc_jwks_min_refresh_seconds: float = 30.0
    # Embassy jurisdictions (reference data); default: the seed shipped with diaspora_identity.
    jurisdictions_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _environment_is_explicit(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("environment"):
            variable = f"{cls.model_config.get('env_prefix', '')}ENVIRONMENT".upper()
            raise ValueError(
                f"{variable} is not set: set it to production, or explicitly to development "
                "or test (the development identity provider, keys and database are accepted "
                "only there); a service without it refuses to start"
            )
        return data

    @model_validator(mode="after")
    def _refuse_development_defaults_in_production(self) -> Self:
        if self.environment != "production":
            return self
        if is_development_database(self.database_url):
            raise ValueError(
                "production mode refuses the development database (password-less postgres)"
            )
        if DEV_ISSUER_MARK in self.oidc_issuer:
            raise ValueError("production mode refuses the development identity provider")
        for name in ("oidc_issuer", "oidc_jwks_url"):
            url = getattr(self, name)
            if url is not None and not url.startswith("https://"):
                raise ValueError(f"production mode requires an https {name}")
        return self

    @property
    def async_database_url(self) -> str:
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url[len(prefix) :]
        return url


def is_development_database(database_url: str) -> bool:
    """The embedded stack's database, or a password-less superuser: never in production."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        return False  # not a URL at all: the driver reports it at connection time
    if f"{url.host}:{url.port}" == DEV_DATABASE_HOST:
        return True
    return url.username == "postgres" and not url.password
