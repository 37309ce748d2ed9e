"""Production mode refuses what only makes sense on a developer's machine."""

from __future__ import annotations

import pytest
from faststream.security import SASLScram512
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from diaspora_events.kafka import client_options, faststream_security
from diaspora_service.settings import ServiceSettings, is_development_database

HTTPS = {"oidc_issuer": "https://id.example.tg/realms/diaspora"}
KAFKA = {
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_username": "registry",
    "kafka_sasl_password": "s3cret",
}


@pytest.mark.parametrize(
    ("url", "development"),
    [
        ("postgresql://postgres@127.0.0.1:55432/registry", True),
        ("postgresql+asyncpg://registry:s3cret@127.0.0.1:55432/registry", True),
        ("postgresql://postgres@db.internal:5432/registry", True),
        ("postgresql://postgres:@db.internal:5432/registry", True),
        ("postgresql://postgres:s3cret@db.internal:5432/registry", False),
        # A role merely containing "postgres@" in its password is not the dev database.
        ("postgresql://registry:my-postgres@pw@db.internal:5432/registry", False),
        ("postgresql+asyncpg://registry:s3cret@db.internal/registry", False),
    ],
)
def test_development_database_is_recognised(url: str, development: bool) -> None:
    assert is_development_database(url) is development


def test_production_refuses_the_development_database() -> None:
    with pytest.raises(ValidationError, match="development database"):
        ServiceSettings(
            environment="production",
            database_url="postgresql://postgres@127.0.0.1:55432/registry",
            **HTTPS,
        )


def test_production_accepts_a_real_database() -> None:
    settings = ServiceSettings(
        environment="production",
        database_url="postgresql://registry:s3cret@db.internal:5432/registry",
        **HTTPS,
        **KAFKA,
    )
    assert settings.async_database_url.startswith("postgresql+asyncpg://registry:")


def test_the_owners_url_is_for_migrations_and_checked_like_the_runtime_one() -> None:
    settings = ServiceSettings(
        environment="production",
        database_url="postgresql://registry_app:s3cret@db.internal:5432/registry",
        migration_database_url="postgresql://registry:0wner@db.internal:5432/registry",
        **HTTPS,
        **KAFKA,
    )
    assert settings.async_database_url.startswith("postgresql+asyncpg://registry_app:")
    assert settings.async_migration_database_url.startswith("postgresql+asyncpg://registry:")
    # Without an owner's URL, migrations run as the one role given.
    single = ServiceSettings(
        environment="test", database_url="postgresql://registry:s@db.internal:5432/registry"
    )
    assert single.async_migration_database_url == single.async_database_url
    with pytest.raises(ValidationError, match="development database"):
        ServiceSettings(
            environment="production",
            database_url="postgresql://registry_app:s3cret@db.internal:5432/registry",
            migration_database_url="postgresql://postgres@127.0.0.1:55432/registry",
            **HTTPS,
            **KAFKA,
        )


def test_no_environment_refuses_to_start_and_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fail closed: an unset environment is not development (issue 15, item 7)."""
    monkeypatch.delenv("ENVIRONMENT", raising=False)

    class RegistryLike(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix="REGISTRY_", extra="ignore", frozen=True)

    monkeypatch.delenv("REGISTRY_ENVIRONMENT", raising=False)
    with pytest.raises(ValidationError, match="REGISTRY_ENVIRONMENT"):
        RegistryLike(database_url="postgresql://postgres@127.0.0.1:55432/registry")
    monkeypatch.setenv("REGISTRY_ENVIRONMENT", "development")
    development = RegistryLike(database_url="postgresql://postgres@127.0.0.1:55432/registry")
    assert development.environment == "development"
    assert development.oidc_issuer.endswith("/dev-idp")
    monkeypatch.setenv("REGISTRY_ENVIRONMENT", "")
    with pytest.raises(ValidationError, match="REGISTRY_ENVIRONMENT"):
        RegistryLike(database_url="postgresql://postgres@127.0.0.1:55432/registry")
    monkeypatch.setenv("REGISTRY_ENVIRONMENT", "staging")
    with pytest.raises(ValidationError):
        RegistryLike(database_url="postgresql://postgres@127.0.0.1:55432/registry")


def test_test_mode_accepts_the_development_defaults_the_fixtures_use() -> None:
    settings = ServiceSettings(
        environment="test", database_url="postgresql://postgres@127.0.0.1:55432/registry"
    )
    assert settings.environment == "test"


def test_production_refuses_the_development_identity_provider() -> None:
    with pytest.raises(ValidationError, match="development identity provider"):
        ServiceSettings(
            environment="production",
            database_url="postgresql://registry:s3cret@db.internal:5432/registry",
        )


@pytest.mark.parametrize(
    "kafka",
    [
        {},
        {
            "kafka_security_protocol": "SASL_PLAINTEXT",
            **{k: v for k, v in KAFKA.items() if "sasl" in k},
        },
        {"kafka_security_protocol": "SSL"},
    ],
)
def test_production_refuses_kafka_without_tls_and_authentication(kafka: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="Kafka without TLS and authentication"):
        ServiceSettings(
            environment="production",
            database_url="postgresql://registry:s3cret@db.internal:5432/registry",
            **HTTPS,
            **kafka,
        )


def test_kafka_client_settings_build_the_connection_every_client_uses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class RegistryLike(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix="REGISTRY_", extra="ignore", frozen=True)

    monkeypatch.setenv("REGISTRY_ENVIRONMENT", "development")
    plaintext = RegistryLike(database_url="postgresql://postgres@127.0.0.1:55432/registry")
    assert client_options(plaintext.kafka) == {
        "bootstrap_servers": "127.0.0.1:19092",
        "security_protocol": "PLAINTEXT",
    }
    monkeypatch.setenv("REGISTRY_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    incomplete = RegistryLike(database_url="postgresql://postgres@127.0.0.1:55432/registry")
    with pytest.raises(ValueError, match="SASL username and password"):
        incomplete.kafka  # noqa: B018 (a process making a Kafka client fails at once)
    monkeypatch.setenv("REGISTRY_KAFKA_SASL_USERNAME", "registry")
    monkeypatch.setenv("REGISTRY_KAFKA_SASL_PASSWORD", "s3cret")
    secured = RegistryLike(database_url="postgresql://postgres@127.0.0.1:55432/registry")
    assert "s3cret" not in repr(secured)
    options = client_options(secured.kafka)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "registry",
        "s3cret",
    )
    assert options["ssl_context"].check_hostname
    security = faststream_security(secured.kafka)
    assert isinstance(security, SASLScram512)
    assert security.use_ssl
