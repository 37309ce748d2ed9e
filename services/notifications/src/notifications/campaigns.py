"""Campaigns: one message to a segment of the diaspora, throttled and resumable.

A coordinator defines a segment, previews its size and schedules the send. When
the send time comes the audience is frozen into ``campaign_recipients`` (one row
per person, unique per campaign), in one transaction. The runner then hands the
people over to the channels in batches: each batch is claimed with FOR UPDATE
SKIP LOCKED, rendered, turned into deliveries (unique per campaign, person and
channel) and marked queued in one transaction. A worker killed at any point
leaves each row either pending (handed over again, once) or queued with its
delivery: a restart continues without sending anyone a second message.

The throttle is a rate per campaign (messages handed over per second); one
worker at a time runs a given campaign's batches (a transaction-level advisory
lock), so the rate holds with several workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import structlog
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import (
    ColumnElement,
    and_,
    func,
    literal,
    not_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.outbox import OutboxWriter
from diaspora_service.text import SingleLine
from notifications.adapters.orm import (
    campaign_recipients,
    campaigns,
    deliveries,
    preferences,
    recipients,
)
from notifications.categories import category
from notifications.dispatch import Skip, Target, choose_channel, delivery_row, enqueue, target_query
from notifications.settings import NotificationsSettings
from notifications.templates import latest_active_all, pick, render_version

log = structlog.get_logger(__name__)

# Codes, not free text: their JSON Schema says so (and refuses control characters).
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")]
LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")]
IscoCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,4}$")]


class Segment(BaseModel):
    """Who a campaign reaches. Every given criterion must hold (AND); values within one
    criterion are alternatives (OR). An empty segment is everyone (minus opt-outs)."""

    model_config = ConfigDict(extra="forbid")

    countries: list[CountryCode] = Field(
        default_factory=list, description="ISO 3166-1 alpha-2 codes."
    )
    languages: list[LanguageCode] = Field(
        default_factory=list, description="ISO 639-1 or 639-3 codes."
    )
    occupations: list[IscoCode] = Field(default_factory=list, description="ISCO-08 codes.")
    newsletter_consent: bool | None = Field(
        default=None, description="true: only people who consented to newsletters."
    )
    # Attributes the registry adds later (kept in recipients.attributes): name -> values.
    attributes: dict[SingleLine, list[SingleLine]] = Field(default_factory=dict)

    @field_validator("countries")
    @classmethod
    def _upper(cls, value: list[str]) -> list[str]:
        return [v.strip().upper() for v in value]


def _consents() -> Any:
    return func.coalesce(preferences.c.consents, literal([], type_=preferences.c.consents.type))


def _opted_out() -> Any:
    return func.coalesce(preferences.c.opted_out, literal([], type_=preferences.c.opted_out.type))


def _has_consent(name: str, wanted: bool) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = literal(name) == func.any(_consents())
    return condition if wanted else not_(condition)


# One function per criterion: a new attribute is one more entry here.
SEGMENT_FILTERS: dict[str, Callable[[Any], ColumnElement[bool]]] = {
    "countries": lambda v: recipients.c.country_of_residence.in_(v),
    "languages": lambda v: recipients.c.language.in_(v),
    "occupations": lambda v: recipients.c.occupations.overlap(v),
    "newsletter_consent": lambda v: _has_consent("newsletter", v),
}


def segment_condition(segment: Segment, category_name: str) -> ColumnElement[bool]:
    """The SQL condition selecting the segment, without people the category may not reach."""
    parts: list[ColumnElement[bool]] = []
    for name, build in SEGMENT_FILTERS.items():
        value = getattr(segment, name)
        if value is None or value == []:
            continue
        parts.append(build(value))
    for attribute, values in segment.attributes.items():
        parts.append(recipients.c.attributes[attribute].astext.in_(values))
    cat = category(category_name)
    if not cat.mandatory:
        parts.append(not_(literal(category_name) == func.any(_opted_out())))
        if cat.needs_consent:
            parts.append(literal(category_name) == func.any(_consents()))
    return and_(true(), *parts)


def _audience_from() -> Any:
    return recipients.outerjoin(preferences, preferences.c.member_id == recipients.c.member_id)


async def audience_size(session: AsyncSession, segment: Segment, category_name: str) -> int:
    query = (
        select(func.count())
        .select_from(_audience_from())
        .where(segment_condition(segment, category_name))
    )
    return int((await session.execute(query)).scalar_one())


async def materialise(session: AsyncSession, campaign_id: UUID, now: datetime) -> int | None:
    """Freeze the audience of a due campaign and start it; None if not startable now."""
    row = (
        await session.execute(
            select(campaigns)
            .where(campaigns.c.id == campaign_id, campaigns.c.status == "scheduled")
            .with_for_update(skip_locked=True)
        )
    ).first()
    if row is None:
        return None
    versions = await latest_active_all(session, row.template)
    category_name = next(iter(versions.values())).category
    segment = Segment.model_validate(row.segment)
    await session.execute(
        insert(campaign_recipients)
        .from_select(
            ["campaign_id", "recipient_id"],
            select(literal(campaign_id), recipients.c.member_id)
            .select_from(_audience_from())
            .where(segment_condition(segment, category_name))
            .order_by(recipients.c.member_id),
        )
        .on_conflict_do_nothing(constraint="campaign_recipients_once")
    )
    audience = (
        await session.execute(
            select(func.count()).where(campaign_recipients.c.campaign_id == campaign_id)
        )
    ).scalar_one()
    await session.execute(
        update(campaigns)
        .where(campaigns.c.id == campaign_id)
        .values(status="sending", started_at=now, audience=audience)
    )
    log.info("campaign_started", campaign_id=str(campaign_id), audience=audience)
    return int(audience)


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
            rows: list[dict[str, Any]] = []
            skipped: list[int] = []
            queued: dict[int, UUID] = {}
            available = self._settings.available_channels
            for claim in claimed:
                target = people.get(claim.recipient_id)
                if target is None:  # erased since the audience was frozen
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


async def progress(session: AsyncSession, campaign_id: UUID) -> dict[str, Any]:
    """Counts for the campaign report: audience states and delivery outcomes."""
    audience = {
        r.status: r.n
        for r in await session.execute(
            select(campaign_recipients.c.status, func.count().label("n"))
            .where(campaign_recipients.c.campaign_id == campaign_id)
            .group_by(campaign_recipients.c.status)
        )
    }
    outcomes: dict[str, dict[str, int]] = {}
    for r in await session.execute(
        select(deliveries.c.channel, deliveries.c.status, func.count().label("n"))
        .where(deliveries.c.campaign_id == campaign_id)
        .group_by(deliveries.c.channel, deliveries.c.status)
    ):
        outcomes.setdefault(r.channel, {})[r.status] = r.n
    return {"audience": audience, "deliveries": outcomes}


__all__ = [
    "CampaignRunner",
    "Segment",
    "audience_size",
    "materialise",
    "progress",
    "segment_condition",
]
