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

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    func,
    literal,
    not_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.advisories import service as advisories
from notifications.campaigns.schemas import Segment
from notifications.campaigns.tables import campaign_recipients, campaigns
from notifications.deliveries.tables import deliveries
from notifications.preferences.domain import category
from notifications.preferences.tables import preferences
from notifications.resources import Notifications
from notifications.tables import recipients
from notifications.templates.domain import BUILTIN_VARIABLES
from notifications.templates.service import latest_active_all

log = structlog.get_logger(__name__)


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


def _subscribers_query(segment: Segment, category_name: str) -> Any | None:
    """The ids of the awareness subscribers the segment reaches, or None."""
    if not segment.subscribers:
        return None
    return advisories.awareness_audience(category_name, languages=segment.languages)


async def audience_size(session: AsyncSession, segment: Segment, category_name: str) -> int:
    total = 0
    if segment.members:
        query = (
            select(func.count())
            .select_from(_audience_from())
            .where(segment_condition(segment, category_name))
        )
        total += int((await session.execute(query)).scalar_one())
    subscribed = _subscribers_query(segment, category_name)
    if subscribed is not None:
        count = select(func.count()).select_from(subscribed.subquery())
        total += int((await session.execute(count)).scalar_one())
    return total


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
    if segment.members:
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
    subscribed = _subscribers_query(segment, category_name)
    if subscribed is not None:
        ids = subscribed.subquery()
        await session.execute(
            insert(campaign_recipients)
            .from_select(
                ["campaign_id", "recipient_id"],
                select(literal(campaign_id), ids.c.subscriber_id).order_by(ids.c.subscriber_id),
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


# -- the coordinators' use cases (campaigns/http.py) --------------------------------

# Variables every per-person message gets from the recipient record.
PERSON_VARIABLES = frozenset({"given_name", "family_name"})


class UnknownTemplate(LookupError):
    """No active version of the campaign's template."""


class AlreadyStarted(Exception):
    """The campaign is past scheduling; ``status`` is where it is."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


async def template_needs(service: Notifications, key: str) -> tuple[str, set[str]]:
    """The template's category, and the variables a campaign must give (not the person's,
    not the built-in ones); ``UnknownTemplate`` when there is no active version."""
    async with service.sessions() as session:
        versions = await latest_active_all(session, key)
    if not versions:
        raise UnknownTemplate(key)
    needed: set[str] = set()
    for version in versions.values():
        needed |= set(version.variables)
    return next(iter(versions.values())).category, needed - PERSON_VARIABLES - BUILTIN_VARIABLES


async def audience_now(service: Notifications, segment: Segment, category_name: str) -> int:
    async with service.sessions() as session:
        return await audience_size(session, segment, category_name)


async def progress_of(service: Notifications, campaign_id: UUID) -> dict[str, Any]:
    async with service.sessions() as session:
        return await progress(session, campaign_id)


async def create(service: Notifications, values: dict[str, Any]) -> Any:
    """Insert the campaign; with the same idempotency key, the one it created before."""
    async with service.sessions() as session:
        try:
            async with session.begin():
                await session.execute(campaigns.insert().values(**values))
        except IntegrityError:
            pass  # the same Idempotency-Key: answer with the campaign it created
        condition = (
            campaigns.c.idempotency_key == values["idempotency_key"]
            if values["idempotency_key"]
            else campaigns.c.id == values["id"]
        )
        return (await session.execute(select(campaigns).where(condition))).one()


async def page(service: Notifications, *, limit: int, before: datetime | None) -> list[Any]:
    query = select(campaigns).order_by(campaigns.c.created_at.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(campaigns.c.created_at < before)
    async with service.sessions() as session:
        return list((await session.execute(query)).all())


async def find(service: Notifications, campaign_id: UUID) -> Any | None:
    async with service.sessions() as session:
        return (
            await session.execute(select(campaigns).where(campaigns.c.id == campaign_id))
        ).first()


async def schedule(service: Notifications, campaign_id: UUID, send_at: datetime) -> Any | None:
    """The campaign scheduled at ``send_at``; None if there is none, ``AlreadyStarted``."""
    async with service.sessions() as session, session.begin():
        row = (
            await session.execute(
                update(campaigns)
                .where(
                    campaigns.c.id == campaign_id, campaigns.c.status.in_(["draft", "scheduled"])
                )
                .values(status="scheduled", send_at=send_at)
                .returning(campaigns)
            )
        ).first()
        if row is None:
            exists = (
                await session.execute(
                    select(campaigns.c.status).where(campaigns.c.id == campaign_id)
                )
            ).first()
            if exists is None:
                return None
            raise AlreadyStarted(exists.status)
    return row


async def cancel(service: Notifications, campaign_id: UUID) -> Any | None:
    """Stop it: nobody not yet handed over gets it; queued, unsent messages are cancelled.
    None if there is no such campaign still running."""
    async with service.sessions() as session, session.begin():
        row = (
            await session.execute(
                update(campaigns)
                .where(
                    campaigns.c.id == campaign_id,
                    campaigns.c.status.in_(["draft", "scheduled", "sending"]),
                )
                .values(status="cancelled", finished_at=datetime.now(UTC))
                .returning(campaigns)
            )
        ).first()
        if row is None:
            return None
        await session.execute(
            update(deliveries)
            .where(and_(deliveries.c.campaign_id == campaign_id, deliveries.c.status == "pending"))
            .values(status="cancelled", last_error="campaign cancelled")
        )
    return row


async def erase_member(session: AsyncSession, member_id: UUID) -> None:
    """Erasure step: the person leaves campaign audiences (the rows stay, for counts)."""
    await session.execute(
        update(campaign_recipients)
        .where(campaign_recipients.c.recipient_id == member_id)
        .values(recipient_id=None)
    )


async def merge_member(session: AsyncSession, absorbed_id: UUID, survivor_id: UUID) -> None:
    """Merge step: the absorbed record's campaign audience rows move to the survivor,
    except for campaigns the survivor is in too (those stay with the absorbed id and are
    left by the erasure that follows)."""
    audience = campaign_recipients.alias("audience")
    await session.execute(
        update(campaign_recipients)
        .where(
            campaign_recipients.c.recipient_id == absorbed_id,
            ~exists().where(
                and_(
                    audience.c.recipient_id == survivor_id,
                    audience.c.campaign_id == campaign_recipients.c.campaign_id,
                )
            ),
        )
        .values(recipient_id=survivor_id)
    )
