"""Settings from environment variables, one prefix per service, checked at start-up."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from diaspora_events.kafka import KafkaConnection, SaslMechanism, SecurityProtocol

Environment = Literal["development", "test", "production"]

DEV_DATABASE_HOST = "127.0.0.1:55432"
# The embedded platform's development identity provider (`devstack idp`): refused in production.
DEV_OIDC_ISSUER = "http://127.0.0.1:8090/dev-idp"
DEV_ISSUER_MARK = "/dev-idp"


class KafkaClientSettings(BaseSettings):
    """How a process reaches Kafka (docs/operations.md): plaintext on loopback for the
    embedded development stack; TLS and a SCRAM principal of its own in deployments."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # The authority that signed the brokers' certificates (PEM); default: the system's.
    kafka_ca_file: str | None = None
    # A client certificate and key (PEM), where the brokers require mutual TLS.
    kafka_cert_file: str | None = None
    kafka_key_file: str | None = None

    @property
    def kafka(self) -> KafkaConnection:
        """Built when a process makes a Kafka client: refuses SASL without a username and
        password then (processes without Kafka clients, the APIs, need no Kafka secret)."""
        password = self.kafka_sasl_password
        return KafkaConnection(
            bootstrap_servers=self.kafka_bootstrap,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=password.get_secret_value() if password is not None else None,
            ca_file=self.kafka_ca_file,
            cert_file=self.kafka_cert_file,
            key_file=self.kafka_key_file,
        )


class ServiceSettings(KafkaClientSettings):
    """Base settings; a service subclasses it with ``env_prefix`` set to its name."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    # No default: a service started without it refuses to start (fail closed). The
    # development defaults below (identity provider, database, registry's document key)
    # are accepted in `development` and `test` (the fixtures run on the embedded stack
    # with a local issuer); `production` refuses every one of them.
    environment: Environment
    database_url: str
    # The tables' owner, for `<service>-migrate` (and tools that change the schema). Unset:
    # the migrations run as DATABASE_URL's role (one role for all: nothing keeps the API
    # from altering its audit table). Set: DATABASE_URL's role is the runtime role, granted
    # after every upgrade what serving needs and no more (diaspora_service.db_roles).
    migration_database_url: str | None = None
    # Keeps environments (and test runs) apart on a shared Kafka cluster.
    topic_prefix: str = ""
    # Replication of the topics a service creates: 1 on one broker, 3 on a cluster.
    kafka_replication_factor: int = 1
    # Port of /health/* and /metrics for processes without an API (relay, worker).
    health_port: int | None = None
    # A consumer with lag whose committed offsets have not moved for this long is stuck.
    consumer_stuck_after_seconds: float = 60.0
    http_host: str = "127.0.0.1"
    # Peers whose X-Forwarded-For names the client (addresses or networks, comma-separated):
    # the gateway's addresses. Anyone else's X-Forwarded-For is ignored: the audit trail
    # records the peer. Run uvicorn with --no-proxy-headers: the application decides.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ("127.0.0.1", "::1")
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

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _trusted_proxies_are_addresses(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        for entry in value:
            if entry == "*":
                raise ValueError(
                    "'*' trusts everyone's X-Forwarded-For: list the gateway's addresses"
                )
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an address or network") from None
        return tuple(value)

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
        if is_development_database(self.database_url) or (
            self.migration_database_url is not None
            and is_development_database(self.migration_database_url)
        ):
            raise ValueError(
                "production mode refuses the development database (password-less postgres)"
            )
        if DEV_ISSUER_MARK in self.oidc_issuer:
            raise ValueError("production mode refuses the development identity provider")
        for name in ("oidc_issuer", "oidc_jwks_url"):
            url = getattr(self, name)
            if url is not None and not url.startswith("https://"):
                raise ValueError(f"production mode requires an https {name}")
        protocol = self.kafka_security_protocol
        if (
            protocol == "PLAINTEXT"
            or protocol == "SASL_PLAINTEXT"
            or (protocol == "SSL" and not self.kafka_cert_file)
        ):
            raise ValueError(
                "production mode refuses Kafka without TLS and authentication: set "
                "KAFKA_SECURITY_PROTOCOL=SASL_SSL and the service's SASL username and password"
            )
        return self

    @property
    def async_database_url(self) -> str:
        return asyncpg_url(self.database_url)

    @property
    def async_migration_database_url(self) -> str:
        """The owner's URL (the runtime one when no separate owner is set)."""
        return asyncpg_url(self.migration_database_url or self.database_url)


def asyncpg_url(url: str) -> str:
    """A PostgreSQL URL (``postgresql://`` or ``postgres://``) for SQLAlchemy's asyncpg
    driver; one already naming a driver is returned as it is."""
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
