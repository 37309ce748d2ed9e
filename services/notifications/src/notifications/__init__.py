"""Notifications service: tells each person what they need to know."""

SERVICE_NAME = "notifications"
