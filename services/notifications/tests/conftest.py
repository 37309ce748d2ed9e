from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from diaspora_devstack.mailbox import Mailbox
from diaspora_devstack.testing import asyncpg_url
from notifications.bootstrap import Notifications, bootstrap
from notifications.settings import NotificationsSettings


@pytest.fixture
async def notifications(
    notifications_database: str, kafka_bootstrap: str, topic_prefix: str, mailbox: Mailbox
) -> AsyncIterator[Notifications]:
    service = bootstrap(
        NotificationsSettings(
            database_url=asyncpg_url(notifications_database),
            kafka_bootstrap=kafka_bootstrap,
            topic_prefix=topic_prefix,
            environment="test",
            smtp_port=mailbox.port,
            json_logs=False,
        )
    )
    yield service
    await service.close()
