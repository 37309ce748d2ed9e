"""Apply the returnees service's migrations: `returnees-migrate` (run before the service starts)."""

from __future__ import annotations

from pathlib import Path

from diaspora_service.migrations import migrate_from_settings
from returnees.settings import ReturneesSettings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def main() -> None:
    settings = ReturneesSettings()
    migrate_from_settings(MIGRATIONS, settings)


if __name__ == "__main__":
    main()
