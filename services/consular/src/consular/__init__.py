"""Consular service: the ministry's e-services for Togolese abroad (service catalogue,
applications and their one state machine, officers' queues per embassy, SLA escalation)."""

SERVICE_NAME = "consular"
