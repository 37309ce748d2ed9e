"""Production mode refuses what only makes sense on a developer's machine."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from diaspora_service.settings import ServiceSettings, is_development_database

HTTPS = {"oidc_issuer": "https://id.example.tg/realms/diaspora"}


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
    )
    assert settings.async_database_url.startswith("postgresql+asyncpg://registry:")


def test_the_owners_url_is_for_migrations_and_checked_like_the_runtime_one() -> None:
    settings = ServiceSettings(
        environment="production",
        database_url="postgresql://registry_app:s3cret@db.internal:5432/registry",
        migration_database_url="postgresql://registry:0wner@db.internal:5432/registry",
        **HTTPS,
    )
    assert settings.async_database_url.startswith("postgresql+asyncpg://registry_app:")
    assert settings.async_migration_database_url.startswith("postgresql+asyncpg://registry:")
    # Without an owner's URL, migrations run as the one role given.
    single = ServiceSettings(database_url="postgresql://registry:s@db.internal:5432/registry")
    assert single.async_migration_database_url == single.async_database_url
    with pytest.raises(ValidationError, match="development database"):
        ServiceSettings(
            environment="production",
            database_url="postgresql://registry_app:s3cret@db.internal:5432/registry",
            migration_database_url="postgresql://postgres@127.0.0.1:55432/registry",
            **HTTPS,
        )
