"""Sending due deliveries, whatever the channel (its transport: ``smtp``, ``sms``).

Each delivery is sent inside the transaction that locks its row (FOR UPDATE SKIP
LOCKED), so a crashed sender releases its rows at once and no two senders take
the same one. A crash after the server accepted a message but before the row is
marked sent resends it: the Message-ID is the delivery id, so the copy carries
the same Message-ID and mail clients show it once (see docs/notifications.md).

Before sending, the sender checks what may have changed since the delivery was
queued: a non-mandatory message inside the person's quiet hours is held until
they end; one whose category the person has since opted out of is cancelled.
A temporary failure is retried with exponential backoff; a permanent one (or the
last attempt) fails the delivery and falls back to the next channel of the
person's order. Time comes from an injectable clock (tests move it).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog
import uuid_utils.compat as uuid_compat
from opentelemetry import trace
from sqlalchemy import any_, bindparam, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.contracts import DeliveryDeliveredV1, DeliveryFailedV1
from diaspora_events.observability import context_from_headers
from diaspora_events.outbox import OutboxWriter
from notifications.deliveries.dispatch import VERIFIED_EMAIL, VERIFIED_PHONE, Target, enqueue
from notifications.deliveries.domain import (
    SECRET_REASONS,
    SUBSCRIBER_REASONS,
    VISITOR_REASON,
    Clock,
    PermanentFailure,
    utc_now,
)
from notifications.deliveries.tables import deliveries
from notifications.preferences.domain import CATEGORIES, DISTURBING, Preferences, quiet_until
from notifications.preferences.tables import preferences
from notifications.settings import NotificationsSettings
from notifications.tables import recipients

log = structlog.get_logger(__name__)
_tracer = trace.get_tracer("notifications.email")

SECRET_REMOVED = "[verification link or code: removed once sent]"  # noqa: S105


class Transport(Protocol):
    """Sends one claimed delivery row on one channel (one per concurrent sender)."""

    async def deliver(self, row: Any) -> None: ...

    async def close(self) -> None: ...


_CLAIM_COLUMNS = (
    deliveries,
    VERIFIED_EMAIL.label("r_email"),
    VERIFIED_PHONE.label("r_phone"),
    recipients.c.email.label("r_any_email"),
    recipients.c.phone.label("r_any_phone"),
    recipients.c.given_name.label("r_given_name"),
    recipients.c.family_name.label("r_family_name"),
    recipients.c.language.label("r_language"),
    recipients.c.country_of_residence,
    preferences.c.channels,
    preferences.c.timezone,
    preferences.c.quiet_start,
    preferences.c.quiet_end,
    preferences.c.opted_out,
    preferences.c.consents,
)


@functools.cache
def _claim_statement(channel: str, limit: int, *, campaign: bool) -> Any:
    """The oldest due deliveries of a channel, locked (other senders skip them).

    Built once per shape: building and keying a statement of three joins costs more
    CPU than running it. Parameters: ``now`` (and ``campaign_id``, ``first_id``)."""
    query = (
        select(*_CLAIM_COLUMNS)
        .select_from(
            deliveries.outerjoin(
                recipients, recipients.c.member_id == deliveries.c.recipient_id
            ).outerjoin(preferences, preferences.c.member_id == deliveries.c.recipient_id)
        )
        .where(
            deliveries.c.status == "pending",
            deliveries.c.channel == channel,
            deliveries.c.next_attempt_at <= bindparam("now"),
        )
        .order_by(deliveries.c.next_attempt_at)
        .limit(limit)
        .with_for_update(of=deliveries, skip_locked=True)
    )
    if campaign:
        query = query.where(
            deliveries.c.campaign_id == bindparam("campaign_id"),
            deliveries.c.id != bindparam("first_id"),
        )
    return query


_MARK_SENT = (
    update(deliveries)
    .where(deliveries.c.id == any_(bindparam("ids", type_=ARRAY(deliveries.c.id.type))))
    .values(
        status="sent",
        attempts=deliveries.c.attempts + 1,
        sent_at=bindparam("at", type_=deliveries.c.sent_at.type),
        last_error=None,
    )
)


class WorkSignal:
    """ "Deliveries were queued": each ``set()`` wakes one waiting sender.

    Unlike an ``asyncio.Event``, signals are counted, not merged: five deliveries
    signalled while every sender is busy are five claims to come, so a sender that
    has just sent one knows whether to look again (no claim that finds nothing).
    """

    def __init__(self) -> None:
        self._pending = 0
        self._event = asyncio.Event()

    def set(self) -> None:
        self._pending += 1
        self._event.set()

    def take(self) -> bool:
        """Take one signal, if there is one."""
        if not self._pending:
            return False
        self._pending -= 1
        if not self._pending:
            self._event.clear()
        return True

    def is_set(self) -> bool:
        return self._pending > 0

    async def wait(self) -> None:
        await self._event.wait()


class Signal(Protocol):
    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    async def wait(self) -> Any: ...


def _take(signal: Signal) -> bool:
    if isinstance(signal, WorkSignal):
        return signal.take()
    if isinstance(signal, asyncio.Event) and signal.is_set():
        signal.clear()  # an Event merges signals: only one claim follows
        return True
    return False


class _Handled(enum.Enum):
    NOTHING = "nothing"
    ONE = "one"  # a message caused by an event, alone in its transaction
    BULK = "bulk"  # a batch of a campaign: more of it is likely due


class DeliverySender:
    """Sends the due deliveries of one channel with ``len(transports)`` concurrent senders."""

    def __init__(
        self,
        *,
        channel: str,
        transports: Sequence[Transport],
        settings: NotificationsSettings,
        sessions: async_sessionmaker[AsyncSession],
        outbox: OutboxWriter,
        work_available: Signal,
        idle_poll: float = 0.5,
        clock: Clock = utc_now,
        on_close: Callable[[], Any] | None = None,
    ) -> None:
        self.channel = channel
        self._transports = list(transports)
        self._settings = settings
        self._sessions = sessions
        self._outbox = outbox
        self._work = work_available
        self._idle_poll = idle_poll
        self.clock = clock
        self._on_close = on_close
        self.sent_total = 0

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await asyncio.gather(*(self._sender(stop, t) for t in self._transports))
        finally:
            if self._on_close is not None:
                with contextlib.suppress(Exception):
                    await self._on_close()

    async def _sender(self, stop: asyncio.Event, transport: Transport) -> None:
        """One sender: claim and send, then look again only when there is reason to.

        After a campaign batch it looks again at once (more of it is likely due) and
        signals one more sender, so that every sender joins a large campaign. After a
        message caused by an event it looks again only if another delivery was
        signalled meanwhile. Otherwise it waits for a signal or its next poll.
        """
        try:
            while not stop.is_set():
                try:
                    handled = await self._send_due(transport)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("sender_error", channel=self.channel)
                    handled = _Handled.NOTHING
                    await asyncio.sleep(1.0)
                if handled is _Handled.BULK:
                    self._work.set()
                    continue
                if handled is _Handled.ONE and _take(self._work):
                    continue
                await self._wait_for_work(stop)
        finally:
            await transport.close()

    async def _wait_for_work(self, stop: asyncio.Event) -> None:
        """Return when this sender should look for due deliveries again: it took a
        signal, or it is time for its poll (deliveries whose retry or quiet hours end,
        fallbacks, which are not signalled). Each sender polls every ``idle_poll`` x
        senders, so the channel as a whole looks about every ``idle_poll``.

        A signal wakes every waiting sender, but only one takes it; the others go back
        to waiting without a query: one new delivery costs one claim.
        """
        deadline = asyncio.get_running_loop().time() + self._idle_poll * len(self._transports)
        while not stop.is_set():
            if _take(self._work):
                return
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return  # poll
            with contextlib.suppress(TimeoutError):  # (stop is looked at every idle_poll)
                await asyncio.wait_for(self._work.wait(), timeout=min(remaining, self._idle_poll))

    async def send_one(self, transport: Transport) -> bool:
        """Handle the oldest due delivery of this channel; False when none is due."""
        return await self._send_due(transport) is not _Handled.NOTHING

    async def _send_due(self, transport: Transport) -> _Handled:
        """Handle the oldest due delivery of this channel.

        A campaign delivery brings up to ``campaign_send_batch - 1`` more due deliveries
        of the same campaign into the same transaction: bulk messages share one commit
        (a crash may resend that many, with the same Message-IDs); a message caused by
        an event is always alone in its transaction.
        """
        now = self.clock()
        async with self._sessions() as session, session.begin():
            claim = _claim_statement(self.channel, 1, campaign=False)
            first = (await session.execute(claim, {"now": now})).first()
            if first is None:
                return _Handled.NOTHING
            rows = [first]
            batch = self._settings.campaign_send_batch
            if first.campaign_id is not None and batch > 1:
                rows += (
                    await session.execute(
                        _claim_statement(self.channel, batch - 1, campaign=True),
                        {"now": now, "campaign_id": first.campaign_id, "first_id": first.id},
                    )
                ).all()
            sent: list[Any] = []
            for row in rows:
                if await self._handle(session, transport, row, now):
                    sent.append(row)
            if sent:
                await self._mark_sent(session, sent)
        self.sent_total += len(sent)
        return _Handled.BULK if first.campaign_id is not None else _Handled.ONE

    async def _handle(
        self, session: AsyncSession, transport: Transport, row: Any, now: datetime
    ) -> bool:
        """Send one claimed row; True if the channel accepted it (marked by the caller)."""
        if (
            row.recipient_id is not None
            and self.channel in ("email", "sms")
            and row.reason != VISITOR_REASON
            and row.reason not in SUBSCRIBER_REASONS
        ):
            # (A consular visitor's address is the one their application's event carried,
            # a subscriber's was checked when queued: neither has a recipient row.)
            # The address must still be the person's: verified, or for a verification
            # message the one being verified. A changed address stops receiving at once.
            verification = row.reason == "verification"
            if self.channel == "email":
                current = row.r_any_email if verification else row.r_email
            else:
                current = row.r_any_phone if verification else row.r_phone
            if current is None or current != row.address:
                await self._set(
                    session, row, status="cancelled", last_error="address changed or unverified"
                )
                await self._forget_secret(session, [row])
                return False
        prefs = Preferences.of(row)
        if not row.mandatory:
            if row.category in prefs.opted_out:
                await self._set(session, row, status="cancelled", last_error="opted out")
                return False
            if self.channel in DISTURBING:
                until = quiet_until(
                    now,
                    zone=prefs.zone(row.country_of_residence),
                    start=prefs.quiet_start,
                    end=prefs.quiet_end,
                )
                if until is not None:
                    log.info("delivery_held_quiet_hours", delivery_id=str(row.id))
                    await self._set(session, row, next_attempt_at=until)
                    return False
        attempts = row.attempts + 1
        try:
            with _tracer.start_as_current_span(
                "smtp send" if self.channel == "email" else f"{self.channel} send",
                context=context_from_headers({"traceparent": row.traceparent or ""}),
                kind=trace.SpanKind.CLIENT,
                attributes={
                    "notifications.delivery_id": str(row.id),
                    "notifications.template": row.template,
                    "notifications.channel": self.channel,
                },
            ):
                await transport.deliver(row)
        except PermanentFailure as error:
            await self._failed(session, row, attempts, str(error))
            return False
        except Exception as error:
            await self._retry_later(session, row, attempts, _describe(error), now)
            return False
        return True

    async def _forget_secret(self, session: AsyncSession, rows: list[Any]) -> None:
        """A verification message's link or code is not kept once it is out (or dead):
        the database holds only the secret's hash (notifications.contacts.verification)."""
        ids = [r.id for r in rows if r.reason in SECRET_REASONS]
        if ids:
            await session.execute(
                update(deliveries)
                .where(deliveries.c.id.in_(ids))
                .values(body=SECRET_REMOVED, sms_text=SECRET_REMOVED)
            )

    async def _mark_sent(self, session: AsyncSession, rows: list[Any]) -> None:
        sent_at = self.clock()
        await session.execute(_MARK_SENT, {"ids": [r.id for r in rows], "at": sent_at})
        await self._forget_secret(session, rows)
        await self._outbox.add_many(
            session,
            [
                DeliveryDeliveredV1(
                    delivery_id=row.id,
                    recipient_id=row.recipient_id,
                    channel=self.channel,
                    template=row.template,
                    cause_event_id=row.cause_event_id,
                    delivered_at=sent_at,
                    attempts=row.attempts + 1,
                )
                for row in rows
            ],
        )
        for row in rows:
            log.info("delivery_sent", channel=self.channel, delivery_id=str(row.id))

    async def _set(self, session: AsyncSession, row: Any, **values: Any) -> None:
        await session.execute(update(deliveries).where(deliveries.c.id == row.id).values(**values))

    async def _retry_later(
        self, session: AsyncSession, row: Any, attempts: int, error: str, now: datetime
    ) -> None:
        if attempts >= self._settings.max_attempts:
            await self._failed(session, row, attempts, error)
            return
        delay = min(
            self._settings.retry_max_delay,
            self._settings.retry_first_delay * 2 ** (attempts - 1),
        )
        log.warning(
            "delivery_retry",
            channel=self.channel,
            delivery_id=str(row.id),
            attempts=attempts,
            retry_in=delay,
        )
        await self._set(
            session,
            row,
            attempts=attempts,
            last_error=error[:2000],
            next_attempt_at=now + timedelta(seconds=delay),
        )

    async def _failed(self, session: AsyncSession, row: Any, attempts: int, error: str) -> None:
        log.error(
            "delivery_failed", channel=self.channel, delivery_id=str(row.id), attempts=attempts
        )
        await self._set(session, row, status="failed", attempts=attempts, last_error=error[:2000])
        await self._forget_secret(session, [row])
        await self._outbox.add(
            session,
            DeliveryFailedV1(
                delivery_id=row.id,
                recipient_id=row.recipient_id,
                channel=self.channel,
                template=row.template,
                cause_event_id=row.cause_event_id,
                failed_at=self.clock(),
                attempts=attempts,
                reason=error[:500],
            ),
        )
        await self._fall_back(session, row)

    async def _fall_back(self, session: AsyncSession, row: Any) -> None:
        """Queue the same message on the next channel of the person's order, if any.
        (Not a verification: it proves one address, no other channel can stand in.)"""
        if row.recipient_id is None or row.r_language is None or row.reason in SECRET_REASONS:
            return
        target = Target(
            member_id=row.recipient_id,
            given_name=row.r_given_name,
            family_name=row.r_family_name,
            email=row.r_email,
            phone=row.r_phone,
            language=row.r_language,
            country=row.country_of_residence,
            prefs=Preferences.of(row),
        )
        tried = set(
            (
                await session.execute(
                    select(deliveries.c.channel).where(
                        deliveries.c.cause_event_id == row.cause_event_id,
                        deliveries.c.recipient_id == row.recipient_id,
                    )
                )
            ).scalars()
        )
        chain = target.chain(self._settings.available_channels)
        after = chain[chain.index(self.channel) + 1 :] if self.channel in chain else chain
        remaining = [c for c in after if c not in tried]
        if not remaining or row.category not in CATEGORIES:
            return
        channel = remaining[0]
        created = await enqueue(
            session,
            self._outbox,
            [
                {
                    "id": uuid_compat.uuid7(),
                    "cause_event_id": row.cause_event_id,
                    "recipient_id": row.recipient_id,
                    "channel": channel,
                    "template": row.template,
                    "template_version": row.template_version,
                    "category": row.category,
                    "mandatory": row.mandatory,
                    "language": row.language,
                    "address": target.address(channel),
                    "subject": row.subject,
                    "body": row.body,
                    "sms_text": row.sms_text,
                    "traceparent": row.traceparent,
                    "campaign_id": row.campaign_id,
                    "previous_id": row.id,
                    "reason": "fallback",
                }
            ],
        )
        if created:
            log.info("delivery_fallback", delivery_id=str(row.id), channel=channel)


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
