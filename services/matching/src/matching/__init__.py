"""Matching service: national needs, the experts who could meet them, and why."""

SERVICE_NAME = "matching"
