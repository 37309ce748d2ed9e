"""Use cases of awareness subscriptions: one transaction each, SQL and outbox writes.

- ``subscribe``: a pending subscription with the consent (text version, time), a
  single-use confirmation secret (its digest kept) and ``returnees.subscriber.requested``
  (the address and link sealed), which notifications sends: the only message an
  unconfirmed address receives. Limits: per address and per client address and hour.
- ``confirm``: the secret proves the address; ``returnees.subscriber.confirmed`` (with
  the signed unsubscribe link) and the person's earlier subscription, if any, ends.
- ``unsubscribe``: the address is forgotten, ``returnees.subscriber.unsubscribed``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import uuid_utils.compat as uuid_compat
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.contracts import (
    SubscriberConfirmedV1,
    SubscriberRequestedV1,
    SubscriberUnsubscribedV1,
)
from diaspora_events.outbox import OutboxWriter
from returnees.subscribers import domain
from returnees.subscribers.tables import subscriptions


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many subscriptions: retry after {retry_after} s")
        self.retry_after = retry_after


class UnknownToken(Exception):
    pass


class ExpiredToken(Exception):
    pass


@dataclass(frozen=True)
class Limits:
    per_address_per_hour: int
    per_client_per_hour: int
    confirm_ttl: timedelta


async def _check_limits(
    session: AsyncSession, limits: Limits, address_hash: str, client_hash: str, now: datetime
) -> None:
    # Serialise requests for one address, so that two at once count each other.
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(address_hash))))
    window = now - timedelta(hours=1)
    by_address = subscriptions.c.address_hash == address_hash
    by_client = subscriptions.c.client_hash == client_hash
    at = subscriptions.c.requested_at
    counts = (
        await session.execute(
            select(
                func.count().filter(by_address),
                func.min(at).filter(by_address),
                func.count().filter(by_client),
                func.min(at).filter(by_client),
            ).where(or_(by_address, by_client), at > window)
        )
    ).one()
    for count, oldest, limit in (
        (counts[0], counts[1], limits.per_address_per_hour),
        (counts[2], counts[3], limits.per_client_per_hour),
    ):
        if count >= limit:
            raise RateLimited(max(1, int((oldest + timedelta(hours=1) - now).total_seconds()) + 1))


async def subscribe(
    session: AsyncSession,
    outbox: OutboxWriter,
    *,
    channel: domain.Channel,
    address: str,
    language: str,
    awareness: bool,
    countries: list[str],
    consent_text_version: str,
    client_hash: str,
    limits: Limits,
    confirm_link: Callable[[str], str],
    now: datetime,
) -> dict[str, Any]:
    """A pending subscription and its confirmation (RateLimited over the limits)."""
    address_hash = domain.digest(channel, address)
    await _check_limits(session, limits, address_hash, client_hash, now)
    token = domain.new_confirm_token()
    row = {
        "id": uuid_compat.uuid7(),
        "channel": channel,
        "address": address,
        "address_hash": address_hash,
        "language": language,
        "awareness": awareness,
        "countries": sorted(set(countries)),
        "consent_text_version": consent_text_version,
        "consented_at": now,
        "status": "pending",
        "confirm_token_hash": domain.digest(token),
        "confirm_expires_at": now + limits.confirm_ttl,
        "client_hash": client_hash,
        "requested_at": now,
    }
    await session.execute(subscriptions.insert().values(**row))
    await outbox.add(
        session,
        SubscriberRequestedV1(
            subscriber_id=row["id"],
            channel=channel,
            language=language,
            requested_at=now,
            expires_at=row["confirm_expires_at"],
            address=address,
            confirm_link=confirm_link(token),
        ),
    )
    return row


async def confirm(
    session: AsyncSession,
    outbox: OutboxWriter,
    token: str,
    *,
    unsubscribe_link: Callable[[UUID], str],
    now: datetime,
) -> dict[str, Any]:
    """Confirm the subscription the secret was sent for (UnknownToken, ExpiredToken);
    an earlier active subscription of the same address ends (the new choices stand)."""
    row = (
        (
            await session.execute(
                select(subscriptions)
                .where(subscriptions.c.confirm_token_hash == domain.digest(token))
                .with_for_update()
            )
        )
        .mappings()
        .first()
    )
    if row is None or row["status"] != "pending":
        raise UnknownToken()
    if row["confirm_expires_at"] <= now:
        raise ExpiredToken()
    earlier = (
        (
            await session.execute(
                select(subscriptions.c.id)
                .where(
                    subscriptions.c.address_hash == row["address_hash"],
                    subscriptions.c.status == "active",
                )
                .with_for_update()
            )
        )
        .scalars()
        .all()
    )
    for old in earlier:
        await unsubscribe(session, outbox, old, now=now)
    await session.execute(
        update(subscriptions)
        .where(subscriptions.c.id == row["id"])
        .values(status="active", confirmed_at=now, confirm_token_hash=None)
    )
    await outbox.add(
        session,
        SubscriberConfirmedV1(
            subscriber_id=row["id"],
            channel=row["channel"],
            language=row["language"],
            awareness=row["awareness"],
            countries=list(row["countries"]),
            consent_text_version=row["consent_text_version"],
            consented_at=row["consented_at"],
            confirmed_at=now,
            address=row["address"],
            unsubscribe_link=unsubscribe_link(row["id"]),
        ),
    )
    return {**row, "status": "active", "confirmed_at": now}


async def unsubscribe(
    session: AsyncSession, outbox: OutboxWriter, subscriber_id: UUID, *, now: datetime
) -> bool:
    """End the subscription and forget its address; False if it had ended already (or
    never existed: the same answer, so a link reveals nothing)."""
    ended = (
        await session.execute(
            update(subscriptions)
            .where(
                subscriptions.c.id == subscriber_id,
                subscriptions.c.status.in_(["pending", "active"]),
            )
            .values(
                status="unsubscribed",
                address=None,
                confirm_token_hash=None,
                unsubscribed_at=now,
            )
            .returning(subscriptions.c.id)
        )
    ).first()
    if ended is None:
        return False
    await outbox.add(
        session, SubscriberUnsubscribedV1(subscriber_id=subscriber_id, unsubscribed_at=now)
    )
    return True
