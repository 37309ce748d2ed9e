"""Apply the registry's migrations: `registry-migrate` (run before the service starts)."""

from __future__ import annotations

from pathlib import Path

from diaspora_service.migrations import upgrade
from registry.settings import RegistrySettings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def main() -> None:
    settings = RegistrySettings()
    upgrade(MIGRATIONS, settings.async_database_url)


if __name__ == "__main__":
    main()
