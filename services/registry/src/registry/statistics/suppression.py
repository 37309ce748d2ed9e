"""Small-cell suppression of published counts: the platform's one rule, shared with
the other services from ``diaspora_service.suppression`` (primary suppression under
the threshold, ``REGISTRY_STATISTICS_MIN_CELL`` here, and complementary suppression
of additive tables; exact counts are for the roles the policy grants
``statistics_exact``)."""

from __future__ import annotations

from diaspora_service.suppression import DEFAULT_THRESHOLD, hidden_cells

__all__ = ["DEFAULT_THRESHOLD", "hidden_cells"]
