"""Failures a channel reports."""


class PermanentFailure(Exception):
    """The channel refused the message for good (SMTP 5xx, SMS 4xx): retrying will not help."""
