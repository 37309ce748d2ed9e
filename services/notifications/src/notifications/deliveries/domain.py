"""What every channel shares: how a failure is told, the message ids, the clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime


class PermanentFailure(Exception):
    """The channel refused the message for good (SMTP 5xx, SMS 4xx): retrying will not help."""


class TransientFailure(Exception):
    """The channel did not take the message now (5xx, timeout): retry later."""


MESSAGE_ID_DOMAIN = "notifications.diaspora.gouv.tg"
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def message_id(delivery_id: object) -> str:
    return f"<{delivery_id}@{MESSAGE_ID_DOMAIN}>"


# The reason of a delivery to a consular visitor (an e-visa applicant without a registry
# record): its address is the one consular's event carried, there is no recipient row to
# check it against (notifications.deliveries.consular).
VISITOR_REASON = "visitor"
