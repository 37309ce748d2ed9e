"""Apply the consular service's migrations: `consular-migrate` (run before the service starts)."""

from __future__ import annotations

from pathlib import Path

from consular.settings import ConsularSettings
from diaspora_service.migrations import migrate_from_settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def main() -> None:
    settings = ConsularSettings()
    migrate_from_settings(MIGRATIONS, settings)


if __name__ == "__main__":
    main()
