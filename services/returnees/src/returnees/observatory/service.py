"""The observatory's read models: plain aggregate queries over the service's own tables
(cases, referrals, partners, country lists), computed on each request. No materialised
view: each query is one grouped scan (cases, their needs or referrals), small next to
the tables' sizes the service is built for, and a view refreshed by a job would show
figures up to one period old while the cases are worked on (docs/returnees.md,
"Observatory", and docs/benchmarks.md for the measured times)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from returnees.observatory.domain import Row

# Months are YYYY-MM (of a date, or of an instant in UTC).
RETURNS = text(
    """
    SELECT coalesce(country_from, 'unknown') AS country,
           to_char(return_date, 'YYYY-MM') AS month,
           coalesce(reason, 'unknown') AS reason,
           count(*) AS n
      FROM cases
     WHERE return_date IS NOT NULL AND status <> 'cancelled'
     GROUP BY 1, 2, 3
     ORDER BY 2, 1, 3
    """
)

NEEDS = text(
    """
    SELECT to_char(coalesce(c.return_date, (c.opened_at AT TIME ZONE 'UTC')::date), 'YYYY-MM')
               AS month,
           need->>'area' AS area,
           CASE WHEN coalesce((need->>'met')::boolean, false) THEN 'met' ELSE 'unmet' END
               AS state,
           count(*) AS n
      FROM cases AS c, jsonb_array_elements(c.needs) AS need
     WHERE c.status <> 'cancelled'
     GROUP BY 1, 2, 3
     ORDER BY 1, 2, 3
    """
)

# Days from referral to acknowledgement (acknowledged ones) and to completion (done ones).
REFERRAL_TIMES = text(
    """
    SELECT r.partner_org AS partner,
           coalesce(min(p.name), r.partner_org) AS name,
           count(*) AS n,
           count(*) FILTER (WHERE r.status = 'referred') AS referred,
           count(*) FILTER (WHERE r.status = 'acknowledged') AS acknowledged,
           count(*) FILTER (WHERE r.status = 'done') AS done,
           count(*) FILTER (WHERE r.status = 'refused') AS refused,
           count(*) FILTER (WHERE r.status = 'cancelled') AS cancelled,
           count(r.acknowledged_at) AS ack_n,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY ack.days) AS ack_median,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY ack.days) AS ack_p90,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY done.days) AS done_median,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY done.days) AS done_p90
      FROM referrals AS r
      LEFT JOIN partners AS p ON p.id = r.partner_id
      CROSS JOIN LATERAL (
          SELECT extract(epoch FROM r.acknowledged_at - r.referred_at) / 86400.0 AS days
      ) AS ack
      CROSS JOIN LATERAL (
          SELECT CASE WHEN r.status = 'done'
                      THEN extract(epoch FROM r.closed_at - r.referred_at) / 86400.0
                 END AS days
      ) AS done
     GROUP BY r.partner_org
     ORDER BY r.partner_org
    """
)

OUTCOMES = ("referred", "acknowledged", "done", "refused", "cancelled")

# The countries feature counts consular's difficulty reports per country and category,
# cumulatively (no month is kept: docs/returnees.md).
DIFFICULTY_REPORTS = text(
    """
    SELECT country, category, reports AS n
      FROM difficulty_report_counts
     ORDER BY country, category
    """
)

# Public decisions only: a publication, or the withdrawal of a published entry.
WATCHLIST_CHANGES = text(
    """
    SELECT to_char(h.at AT TIME ZONE 'UTC', 'YYYY-MM') AS month,
           e.country AS country,
           h.to_status AS change,
           count(*) AS n
      FROM watchlist_history AS h
      JOIN watchlist_entries AS e ON e.id = h.entry_id
     WHERE h.to_status = 'published'
        OR (h.to_status = 'withdrawn' AND h.from_status = 'published')
     GROUP BY 1, 2, 3
     ORDER BY 1, 2, 3
    """
)


def _days(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


async def returns(session: AsyncSession) -> list[Row]:
    result = await session.execute(RETURNS)
    return [Row({"country": r.country, "month": r.month, "reason": r.reason}, r.n) for r in result]


async def needs(session: AsyncSession) -> list[Row]:
    result = await session.execute(NEEDS)
    return [Row({"month": r.month, "area": r.area, "state": r.state}, r.n) for r in result]


async def referral_times(session: AsyncSession) -> list[Row]:
    result = await session.execute(REFERRAL_TIMES)
    rows = []
    for r in result:
        measures: dict[str, str | int | float | None] = {o: getattr(r, o) for o in OUTCOMES}
        measures |= {
            "acknowledged_n": r.ack_n,
            "days_to_acknowledge_median": _days(r.ack_median),
            "days_to_acknowledge_p90": _days(r.ack_p90),
            "days_to_complete_median": _days(r.done_median),
            "days_to_complete_p90": _days(r.done_p90),
        }
        rows.append(Row({"partner": r.partner, "name": r.name}, r.n, measures))
    return rows


async def difficulty_reports(session: AsyncSession) -> list[Row]:
    result = await session.execute(DIFFICULTY_REPORTS)
    return [Row({"country": r.country, "category": r.category}, r.n) for r in result]


async def watchlist_changes(session: AsyncSession) -> list[Row]:
    result = await session.execute(WATCHLIST_CHANGES)
    return [Row({"month": r.month, "country": r.country, "change": r.change}, r.n) for r in result]
