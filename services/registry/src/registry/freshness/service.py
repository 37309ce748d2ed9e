"""Keeping profiles current: the freshness score and the update campaign.

Freshness score (0 to 1) of a profile, shown to the person and to officers:

    score = 0.7 * recency + 0.3 * completeness

- recency: 1 just after the last confirmation or update (the later of
  ``last_confirmed_at``, ``updated_at`` and ``registered_at``), falling linearly to
  0.5 at the staleness period (``REGISTRY_STALE_AFTER_MONTHS``, default 12) and to
  0 at twice that period;
- completeness: the share of the key profile fields that are filled in: city of
  residence, occupations, skills, education, languages, availability for missions.

Update campaign (:class:`StaleCampaign`, run by ``registry-worker``): a profile not
confirmed for the staleness period (``last_confirmed_at``, or ``registered_at`` if it
never was) is marked stale: a ``stale_marks`` row and a ``registry.member.marked-stale``
event through the outbox, in one transaction per batch. The mark's key is the member
and the confirmation time the period runs from, so a member is marked once per
period whatever the crashes, restarts or concurrent workers (``FOR UPDATE SKIP
LOCKED``); confirming the profile starts a new period. Notifications reminds the person.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

import structlog
from sqlalchemy import and_, delete, exists, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.contracts.registry import MemberMarkedStaleV1
from diaspora_events.outbox import OutboxWriter
from registry.members.records import consents_of, profile_of
from registry.members.tables import members
from registry.statistics.tables import stale_marks

log = structlog.get_logger(__name__)

RECENCY_WEIGHT = 0.7
KEY_FIELDS = ("city", "occupations", "skills", "education", "languages", "availability")
# A month, as the staleness period counts it (the mean Gregorian month).
MONTH = timedelta(days=30.436875)


@dataclass(frozen=True)
class Freshness:
    score: float
    recency: float
    completeness: float
    last_confirmed_at: datetime | None
    last_changed_at: datetime
    stale_since: datetime | None
    missing: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "recency": self.recency,
            "completeness": self.completeness,
            "last_confirmed_at": self.last_confirmed_at,
            "last_changed_at": self.last_changed_at,
            "stale": self.stale_since is not None,
            "stale_since": self.stale_since,
            "missing": list(self.missing),
        }


def _filled(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_filled(v) for v in value.values())
    if isinstance(value, list | tuple | set | str):
        return bool(value)
    return value is not None and value is not False


def freshness(view: Mapping[str, Any], *, now: datetime, stale_after_months: int) -> Freshness:
    """The score of a member record (as ``registry.members.records.view_of`` gives it)."""
    registered: datetime = view["registered_at"]
    confirmed: datetime | None = view.get("last_confirmed_at")
    changed = max(t for t in (registered, confirmed, view.get("updated_at")) if t is not None)
    period = MONTH * stale_after_months
    age = max(now - changed, timedelta(0))
    recency = max(0.0, 1.0 - age / (2 * period))
    missing = tuple(f for f in KEY_FIELDS if not _filled(view.get(f)))
    completeness = 1.0 - len(missing) / len(KEY_FIELDS)
    basis = confirmed or registered
    return Freshness(
        score=round(RECENCY_WEIGHT * recency + (1 - RECENCY_WEIGHT) * completeness, 3),
        recency=round(recency, 3),
        completeness=round(completeness, 3),
        last_confirmed_at=confirmed,
        last_changed_at=changed,
        stale_since=basis + period if now - basis >= period else None,
        missing=missing,
    )


class StaleCampaign:
    """Marks stale profiles, in batches, every ``interval`` seconds."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        outbox: OutboxWriter,
        after_months: int = 12,
        interval: float = 3600.0,
        batch_size: int = 500,
    ) -> None:
        self._sessions = sessions
        self._outbox = outbox
        self.after_months = after_months
        self.interval = interval
        self.batch_size = batch_size
        self.marked_total = 0

    async def mark_batch(self, *, now: datetime | None = None) -> int:
        """Mark at most one batch of stale profiles; returns how many were marked."""
        now = now or datetime.now(UTC)
        cutoff = now - MONTH * self.after_months
        basis = func.coalesce(members.c.last_confirmed_at, members.c.registered_at)
        already = exists().where(
            and_(stale_marks.c.member_id == members.c.id, stale_marks.c.confirmed_at == basis)
        )
        async with self._sessions() as session, session.begin():
            rows = (
                (
                    await session.execute(
                        select(members, basis.label("stale_basis"))
                        .where(basis < cutoff, ~already)
                        .order_by(basis, members.c.id)
                        .limit(self.batch_size)
                        .with_for_update(of=members, skip_locked=True)
                    )
                )
                .mappings()
                .all()
            )
            if not rows:
                return 0
            consents = await consents_of(session, [row["id"] for row in rows])
            await session.execute(
                pg_insert(stale_marks)
                .values(
                    [
                        {
                            "member_id": row["id"],
                            "confirmed_at": row["stale_basis"],
                            "marked_at": now,
                        }
                        for row in rows
                    ]
                )
                .on_conflict_do_nothing()
            )
            for row in rows:
                await self._outbox.add(
                    session,
                    MemberMarkedStaleV1(
                        member_id=row["id"],
                        marked_at=now,
                        last_confirmed_at=row["stale_basis"],
                        profile=profile_of(
                            cast(Mapping[str, Any], row), consents.get(row["id"], [])
                        ),
                    ),
                    subject=str(row["id"]),
                )
        self.marked_total += len(rows)
        log.info("profiles_marked_stale", members=len(rows))
        return len(rows)

    async def run_once(self, *, now: datetime | None = None) -> int:
        """Mark every stale profile, batch after batch; returns how many were marked."""
        total = 0
        while True:
            marked = await self.mark_batch(now=now)
            total += marked
            if marked < self.batch_size:
                return total

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception as error:  # the next round retries; nothing was half-done
                log.warning("stale_campaign_failed", error=repr(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)


async def forget_stale_marks(session: AsyncSession, member_id: UUID) -> None:
    """Erasure step: the member's campaign marks go with them."""
    await session.execute(delete(stale_marks).where(stale_marks.c.member_id == member_id))
