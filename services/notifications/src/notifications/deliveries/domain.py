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

# Deliveries to awareness subscribers (notifications.advisories), who are not members:
# their address is checked when the message is queued (confirmed, not unsubscribed) and
# what is still queued for them is cancelled when they leave, so the sender does not look
# for them among the members' contacts. The confirmation's link, like a verification's,
# is removed from the log once the message is out.
SUBSCRIBER_REASON = "subscriber"
SUBSCRIBER_CONFIRMATION_REASON = "sub_confirmation"
SUBSCRIBER_REASONS = frozenset({SUBSCRIBER_REASON, SUBSCRIBER_CONFIRMATION_REASON})
SECRET_REASONS = frozenset({"verification", SUBSCRIBER_CONFIRMATION_REASON})
