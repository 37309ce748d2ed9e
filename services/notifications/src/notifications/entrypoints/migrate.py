"""Apply the notifications's migrations: `notifications-migrate` (run before the service starts)."""

from __future__ import annotations

from pathlib import Path

from diaspora_service.migrations import migrate_from_settings
from notifications.settings import NotificationsSettings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def main() -> None:
    settings = NotificationsSettings()
    migrate_from_settings(MIGRATIONS, settings)


if __name__ == "__main__":
    main()
