"""Use cases of the country lists: one transaction each, SQL and outbox writes.

The caller (``http.py``, the consumer) has already decided who may act; these functions
check versions and the watchlist's status machine, and write the change, its history
row and its event together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import uuid_utils.compat as uuid_compat
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.contracts import AdvisoryPublishedV1, AdvisoryWithdrawnV1
from diaspora_events.contracts.consular import ReportFiledV1
from diaspora_events.outbox import OutboxWriter
from returnees.cases.tables import cases
from returnees.countries import domain
from returnees.countries.tables import (
    labour_demand,
    labour_demand_history,
    report_counts,
    watchlist,
    watchlist_history,
)

# The reasons for return (cases' intake) that count as evidence of violations of migrant
# workers' rights in the country returned from: an expulsion (forced return), or a
# humanitarian return (evacuation, flight from abuse or crisis). Voluntary, assisted
# voluntary, end-of-contract and other returns do not. Vulnerabilities (trafficking,
# violence) are not counted: they are sealed with each person's key and readable by the
# assigned case worker only (docs/returnees.md).
RIGHTS_REASONS: tuple[str, ...] = ("expelled", "humanitarian")
CASES_RULE = (
    "cases returned from the country whose reason is expelled or humanitarian, not "
    "cancelled, erased ones included (anonymous); vulnerabilities are sealed and not counted"
)


class VersionConflict(Exception):
    def __init__(self, current: int) -> None:
        super().__init__(f"the current version is {current}")
        self.current = current


class AlreadyPublished(Exception):
    """The country has a published entry already (withdraw it first)."""


# --- labour-demand countries ----------------------------------------------------------


async def labour_demand_rows(
    session: AsyncSession, *, published_only: bool, country: str | None = None
) -> list[dict[str, Any]]:
    query = select(labour_demand).order_by(labour_demand.c.country)
    if published_only:
        query = query.where(labour_demand.c.published.is_(True))
    if country is not None:
        query = query.where(labour_demand.c.country == country)
    return [dict(r) for r in (await session.execute(query)).mappings()]


async def save_labour_demand(
    session: AsyncSession,
    country: str,
    values: dict[str, Any],
    *,
    actor: str,
    expected: int | None,
    now: datetime,
) -> dict[str, Any]:
    """Create or replace the country's entry (a new version, kept in the history)."""
    current = (
        await session.execute(
            select(labour_demand.c.version)
            .where(labour_demand.c.country == country)
            .with_for_update()
        )
    ).scalar()
    if expected is not None and expected != (current or 0):
        raise VersionConflict(current or 0)
    row = {
        **values,
        "country": country,
        "version": (current or 0) + 1,
        "updated_by": actor,
        "updated_at": now,
    }
    await session.execute(
        insert(labour_demand)
        .values(**row)
        .on_conflict_do_update(
            index_elements=[labour_demand.c.country],
            set_={k: v for k, v in row.items() if k != "country"},
        )
    )
    snapshot = {
        k: (v.isoformat() if hasattr(v, "isoformat") else v)
        for k, v in row.items()
        if k not in ("updated_by", "updated_at")
    }
    await session.execute(
        labour_demand_history.insert().values(
            country=country,
            version=row["version"],
            snapshot=snapshot,
            changed_by=actor,
            changed_at=now,
        )
    )
    return row


async def labour_demand_versions(session: AsyncSession, country: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(labour_demand_history)
        .where(labour_demand_history.c.country == country)
        .order_by(labour_demand_history.c.version.desc())
    )
    return [dict(r) for r in rows.mappings()]


# --- evidence: difficulty reports per country and category ----------------------------


async def count_report(session: AsyncSession, event: ReportFiledV1) -> None:
    """One more difficulty report of its country and category (each event once)."""
    country = event.country.upper()
    statement = insert(report_counts).values(
        country=country, category=event.category, reports=1, last_filed_at=event.filed_at
    )
    await session.execute(
        statement.on_conflict_do_update(
            constraint="difficulty_report_counts_pkey",
            set_={
                "reports": report_counts.c.reports + 1,
                "last_filed_at": statement.excluded.last_filed_at,
            },
        )
    )


async def report_counts_of(session: AsyncSession, country: str) -> dict[str, int]:
    rows = await session.execute(
        select(report_counts.c.category, report_counts.c.reports)
        .where(report_counts.c.country == country)
        .order_by(report_counts.c.category)
    )
    return {r.category: r.reports for r in rows}


async def case_counts_of(session: AsyncSession, country: str) -> dict[str, int]:
    """Cases returned from ``country`` whose reason indicates rights violations, per
    reason (``RIGHTS_REASONS``; each reason listed, 0 included). A direct count, in the
    caller's transaction: the reason is on no case event, and the country travels sealed."""
    rows = await session.execute(
        select(cases.c.reason, func.count())
        .where(
            cases.c.country_from == country,
            cases.c.reason.in_(RIGHTS_REASONS),
            cases.c.status != "cancelled",
        )
        .group_by(cases.c.reason)
    )
    found: dict[str, int] = {row[0]: row[1] for row in rows}
    return {reason: found.get(reason, 0) for reason in RIGHTS_REASONS}


# --- watchlist ------------------------------------------------------------------------


async def propose(
    session: AsyncSession,
    values: dict[str, Any],
    *,
    sources: list[dict[str, Any]],
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """A draft entry, its evidence frozen now."""
    evidence = {
        "difficulty_reports": await report_counts_of(session, values["country"]),
        "counted_at": now.isoformat(),
        "cases": await case_counts_of(session, values["country"]),
        "cases_rule": CASES_RULE,
        "sources": sources,
    }
    row = {
        **values,
        "id": uuid_compat.uuid7(),
        "status": "draft",
        "evidence": evidence,
        "proposed_by": actor,
        "proposed_at": now,
        "version": 1,
        "updated_at": now,
    }
    await session.execute(watchlist.insert().values(**row))
    await _history(session, row["id"], "propose", None, "draft", actor, None, now)
    return row


async def watchlist_rows(
    session: AsyncSession,
    *,
    statuses: list[str] | None = None,
    country: str | None = None,
    entry_id: UUID | None = None,
    lock: bool = False,
) -> list[dict[str, Any]]:
    query = select(watchlist).order_by(watchlist.c.country, watchlist.c.proposed_at.desc())
    if statuses:
        query = query.where(watchlist.c.status.in_(statuses))
    if country:
        query = query.where(watchlist.c.country == country)
    if entry_id is not None:
        query = query.where(watchlist.c.id == entry_id)
    if lock:
        query = query.with_for_update()
    return [dict(r) for r in (await session.execute(query)).mappings()]


async def history(session: AsyncSession, entry_id: UUID) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(watchlist_history)
        .where(watchlist_history.c.entry_id == entry_id)
        .order_by(watchlist_history.c.id)
    )
    return [dict(r) for r in rows.mappings()]


async def _history(
    session: AsyncSession,
    entry_id: UUID,
    action: str,
    from_status: str | None,
    to_status: str,
    actor: str,
    reason: str | None,
    now: datetime,
) -> None:
    await session.execute(
        watchlist_history.insert().values(
            entry_id=entry_id,
            action=action,
            from_status=from_status,
            to_status=to_status,
            actor=actor,
            reason=reason,
            at=now,
        )
    )


async def transition(
    session: AsyncSession,
    outbox: OutboxWriter,
    row: dict[str, Any],
    *,
    action: str,
    actor: str,
    reason: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Move a (locked) entry along; publishing emits its advisory, withdrawing a
    published one says so. IllegalTransition, FourEyes, AlreadyPublished."""
    target = domain.next_status(row["status"], action, proposer=row["proposed_by"] == actor)
    changes: dict[str, Any] = {
        "status": target,
        "version": row["version"] + 1,
        "updated_at": now,
    }
    if action in ("publish", "return"):
        changes["reviewed_by"] = actor
    if target == "published":
        changes["published_at"] = now
    if target == "withdrawn":
        changes["withdrawn_at"] = now
    try:
        async with session.begin_nested():
            await session.execute(
                update(watchlist).where(watchlist.c.id == row["id"]).values(**changes)
            )
    except IntegrityError:
        raise AlreadyPublished(row["country"]) from None
    await _history(session, row["id"], action, row["status"], target, actor, reason, now)
    changed = {**row, **changes}
    if target == "published":
        await outbox.add(
            session,
            AdvisoryPublishedV1(
                entry_id=row["id"],
                country=row["country"],
                level=row["level"],
                title_fr=row["title_fr"],
                title_en=row["title_en"],
                text_fr=row["text_fr"],
                text_en=row["text_en"],
                published_at=now,
            ),
        )
    elif target == "withdrawn" and row["status"] == "published":
        await outbox.add(
            session,
            AdvisoryWithdrawnV1(entry_id=row["id"], country=row["country"], withdrawn_at=now),
        )
    return changed
