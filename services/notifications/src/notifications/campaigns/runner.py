"""The campaign runner (a periodic job of the worker, built by ``bootstrap``): starts due
campaigns and hands their audience over to the channels, throttled and resumable
(see ``service.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.outbox import OutboxWriter
from notifications.advisories import service as advisories
from notifications.campaigns.service import materialise
from notifications.campaigns.tables import campaign_recipients, campaigns
from notifications.deliveries.dispatch import (
    Skip,
    Target,
    choose_channel,
    delivery_row,
    enqueue,
    target_query,
)
from notifications.deliveries.domain import SUBSCRIBER_REASON
from notifications.deliveries.tables import deliveries
from notifications.settings import NotificationsSettings
from notifications.tables import recipients
from notifications.templates.domain import pick, render_version
from notifications.templates.service import latest_active_all

log = structlog.get_logger(__name__)


class CampaignRunner:
    def __init__(
        self,
        *,
        settings: NotificationsSettings,
        sessions: async_sessionmaker[AsyncSession],
        outbox: OutboxWriter,
        work_available: Any = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._outbox = outbox
        self._work = work_available
        self.clock = clock
        self.handed_over = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            busy = False
            try:
                await self.start_due()
                busy = await self.step_all(stop)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("campaign_runner_error")
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        stop.wait(), timeout=self._settings.campaign_poll_interval
                    )

    async def start_due(self) -> None:
        now = self.clock()
        async with self._sessions() as session:
            due = (
                (
                    await session.execute(
                        select(campaigns.c.id).where(
                            campaigns.c.status == "scheduled", campaigns.c.send_at <= now
                        )
                    )
                )
                .scalars()
                .all()
            )
        for campaign_id in due:
            async with self._sessions() as session, session.begin():
                await materialise(session, campaign_id, now)

    async def step_all(self, stop: asyncio.Event) -> bool:
        async with self._sessions() as session:
            sending = (
                await session.execute(
                    select(campaigns.c.id, campaigns.c.rate_per_second).where(
                        campaigns.c.status == "sending"
                    )
                )
            ).all()
        if not sending:
            return False
        await asyncio.gather(*(self.drain(r.id, r.rate_per_second, stop) for r in sending))
        return True

    async def drain(self, campaign_id: UUID, rate: int, stop: asyncio.Event) -> None:
        """Hand over the campaign's pending people at ``rate`` per second until none is left
        (or for a few seconds, so that new campaigns and stop requests are seen)."""
        rate = max(1, rate)
        # Batches of a tenth of a second of the rate (at most campaign_batch_size).
        batch = max(1, min(self._settings.campaign_batch_size, rate // 10 or 1))
        started = time.monotonic()
        handed = 0
        while not stop.is_set() and time.monotonic() - started < 5.0:
            done = await self.hand_over(campaign_id, batch)
            if done is None:  # another worker holds this campaign right now
                await asyncio.sleep(0.2)
                return
            if done == 0:
                await self.finish_if_done(campaign_id)
                return
            handed += done
            if self._work is not None:
                self._work.set()
            # Throttle: never ahead of rate * elapsed.
            ahead = handed / rate - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)

    async def hand_over(self, campaign_id: UUID, limit: int) -> int | None:
        """One batch: render and queue deliveries for up to ``limit`` pending people."""
        async with self._sessions() as session, session.begin():
            locked = (
                await session.execute(
                    select(func.pg_try_advisory_xact_lock(_lock_key(campaign_id)))
                )
            ).scalar_one()
            if not locked:
                return None
            campaign = (
                await session.execute(select(campaigns).where(campaigns.c.id == campaign_id))
            ).one()
            if campaign.status != "sending":
                return 0
            claimed = (
                await session.execute(
                    select(campaign_recipients.c.id, campaign_recipients.c.recipient_id)
                    .where(
                        campaign_recipients.c.campaign_id == campaign_id,
                        campaign_recipients.c.status == "pending",
                    )
                    .order_by(campaign_recipients.c.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not claimed:
                return 0
            versions = await latest_active_all(session, campaign.template)
            people = {
                r.member_id: Target.of(r)
                for r in await session.execute(
                    target_query().where(
                        recipients.c.member_id.in_(
                            [c.recipient_id for c in claimed if c.recipient_id is not None]
                        )
                    )
                )
            }
            # The awareness subscribers among them (campaigns/schemas.py Segment.subscribers).
            subscribed = await advisories.campaign_subscribers(
                session,
                [c.recipient_id for c in claimed if c.recipient_id not in people],
            )
            rows: list[dict[str, Any]] = []
            skipped: list[int] = []
            queued: dict[int, UUID] = {}
            available = self._settings.available_channels
            for claim in claimed:
                subscriber = subscribed.get(claim.recipient_id)
                if subscriber is not None:
                    version = pick(versions, subscriber.target.language)
                    message = advisories.with_unsubscribe_link(
                        render_version(
                            version,
                            {**campaign.variables, "given_name": "", "family_name": ""},
                            locale=version.language,
                            timezone=subscriber.target.zone,
                        ),
                        subscriber.unsubscribe_link,
                    )
                    row = delivery_row(
                        subscriber.target,
                        subscriber.channel,
                        message,
                        cause_event_id=campaign_id,
                        template=campaign.template,
                        category_name=version.category,
                        campaign_id=campaign_id,
                        reason=SUBSCRIBER_REASON,
                    )
                    rows.append(row)
                    queued[claim.id] = row["id"]
                    continue
                target = people.get(claim.recipient_id)
                if target is None:  # erased (or unsubscribed) since the audience was frozen
                    skipped.append(claim.id)
                    continue
                version = pick(versions, target.language)
                try:
                    channel = choose_channel(target, version.category, available)
                except Skip:
                    skipped.append(claim.id)
                    continue
                message = render_version(
                    version,
                    {
                        **campaign.variables,
                        "given_name": target.given_name,
                        "family_name": target.family_name,
                    },
                    locale=target.locale_for(version.language),
                    timezone=target.zone,
                )
                row = delivery_row(
                    target,
                    channel,
                    message,
                    cause_event_id=campaign_id,
                    template=campaign.template,
                    category_name=version.category,
                    campaign_id=campaign_id,
                    reason="campaign",
                )
                rows.append(row)
                queued[claim.id] = row["id"]
            await enqueue(session, self._outbox, rows)
            if queued:
                await session.execute(
                    text(
                        "UPDATE campaign_recipients AS c SET status = 'queued', delivery_id = v.d"
                        " FROM unnest(CAST(:ids AS bigint[]), CAST(:deliveries AS uuid[]))"
                        " AS v(i, d) WHERE c.id = v.i"
                    ),
                    {"ids": list(queued), "deliveries": list(queued.values())},
                )
            if skipped:
                await session.execute(
                    update(campaign_recipients)
                    .where(campaign_recipients.c.id.in_(skipped))
                    .values(status="skipped")
                )
        self.handed_over += len(queued)
        return len(claimed)

    async def finish_if_done(self, campaign_id: UUID) -> None:
        async with self._sessions() as session, session.begin():
            waiting = (
                await session.execute(
                    select(func.count())
                    .select_from(deliveries)
                    .where(
                        deliveries.c.campaign_id == campaign_id, deliveries.c.status == "pending"
                    )
                )
            ).scalar_one()
            pending = (
                await session.execute(
                    select(func.count()).where(
                        campaign_recipients.c.campaign_id == campaign_id,
                        campaign_recipients.c.status == "pending",
                    )
                )
            ).scalar_one()
            if waiting == 0 and pending == 0:
                await session.execute(
                    update(campaigns)
                    .where(campaigns.c.id == campaign_id, campaigns.c.status == "sending")
                    .values(status="completed", finished_at=self.clock())
                )
                log.info("campaign_completed", campaign_id=str(campaign_id))


def _lock_key(campaign_id: UUID) -> int:
    return zlib.crc32(f"campaign:{campaign_id}".encode()) - 2**31
