"""Referrals of a case's need to a partner organisation: acknowledged, then done or
refused; SLA deadlines and the escalation job (``service.escalate_overdue``)."""
