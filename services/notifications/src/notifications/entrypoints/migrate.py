"""Apply the notifications's migrations: `notifications-migrate` (run before the service starts)."""

from __future__ import annotations

from pathlib import Path

from diaspora_service.migrations import upgrade
from notifications.settings import NotificationsSettings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def main() -> None:
    settings = NotificationsSettings()
    upgrade(MIGRATIONS, settings.async_database_url)


if __name__ == "__main__":
    main()
