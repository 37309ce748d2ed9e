"""Email delivery over SMTP: due deliveries are claimed, sent and marked, one by one.

Each delivery is sent inside the transaction that locks its row (FOR UPDATE SKIP
LOCKED), so a crashed sender releases its rows at once and no two senders take
the same one. A crash after the server accepted a message but before the row is
marked sent resends it: the Message-ID is the delivery id, so the copy carries
the same Message-ID and mail clients show it once (see docs/notifications.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import aiosmtplib
import structlog
from opentelemetry import trace
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import func

from diaspora_events.contracts import DeliveryDeliveredV1, DeliveryFailedV1
from diaspora_events.observability import context_from_headers
from diaspora_events.outbox import OutboxWriter
from notifications.adapters.orm import deliveries
from notifications.settings import NotificationsSettings

log = structlog.get_logger(__name__)
_tracer = trace.get_tracer("notifications.email")

MESSAGE_ID_DOMAIN = "notifications.diaspora.gouv.tg"


def message_id(delivery_id: object) -> str:
    return f"<{delivery_id}@{MESSAGE_ID_DOMAIN}>"


class PermanentFailure(Exception):
    """The server refused the message for good (5xx): retrying will not help."""


class SmtpConnection:
    """One reused SMTP connection, reopened when the server drops it."""

    def __init__(self, settings: NotificationsSettings) -> None:
        self._settings = settings
        self._client: aiosmtplib.SMTP | None = None

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        s = self._settings
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            use_tls=s.smtp_tls,
            start_tls=s.smtp_starttls,
            timeout=s.smtp_timeout,
        )
        await client.connect()
        if s.smtp_username and s.smtp_password:
            await client.login(s.smtp_username, s.smtp_password)
        self._client = client
        return client

    async def send(self, message: EmailMessage) -> None:
        try:
            client = await self._connected()
            await client.send_message(message)
        except aiosmtplib.SMTPResponseException as error:
            if 500 <= error.code < 600:
                raise PermanentFailure(f"{error.code} {error.message}") from error
            await self.close()
            raise
        except (aiosmtplib.SMTPException, OSError):
            await self.close()
            raise

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(Exception):
                await client.quit()


class EmailSender:
    def __init__(
        self,
        *,
        settings: NotificationsSettings,
        sessions: async_sessionmaker[AsyncSession],
        outbox: OutboxWriter,
        work_available: asyncio.Event,
        idle_poll: float = 0.5,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._outbox = outbox
        self._work = work_available
        self._idle_poll = idle_poll
        self.sent_total = 0

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._sender(stop, n) for n in range(self._settings.email_senders)))

    async def _sender(self, stop: asyncio.Event, number: int) -> None:
        connection = SmtpConnection(self._settings)
        try:
            while not stop.is_set():
                try:
                    did_work = await self.send_one(connection)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("email_sender_error", sender=number)
                    did_work = False
                    await asyncio.sleep(1.0)
                if not did_work:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._work.wait(), timeout=self._idle_poll)
                    self._work.clear()
        finally:
            await connection.close()

    async def send_one(self, connection: SmtpConnection) -> bool:
        """Send the oldest due email delivery; False when none is due."""
        async with self._sessions() as session, session.begin():
            row = (
                await session.execute(
                    select(deliveries)
                    .where(
                        deliveries.c.status == "pending",
                        deliveries.c.channel == "email",
                        deliveries.c.next_attempt_at <= func.now(),
                    )
                    .order_by(deliveries.c.next_attempt_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if row is None:
                return False
            attempts = row.attempts + 1
            try:
                with _tracer.start_as_current_span(
                    "smtp send",
                    context=context_from_headers({"traceparent": row.traceparent or ""}),
                    kind=trace.SpanKind.CLIENT,
                    attributes={
                        "notifications.delivery_id": str(row.id),
                        "notifications.template": row.template,
                    },
                ):
                    await connection.send(self._message(row))
            except PermanentFailure as error:
                await self._failed(session, row, attempts, str(error))
                return True
            except Exception as error:
                await self._retry_later(session, row, attempts, repr(error))
                return True
            now = datetime.now(UTC)
            await session.execute(
                update(deliveries)
                .where(deliveries.c.id == row.id)
                .values(status="sent", attempts=attempts, sent_at=now, last_error=None)
            )
            await self._outbox.add(
                session,
                DeliveryDeliveredV1(
                    delivery_id=row.id,
                    recipient_id=row.recipient_id,
                    channel="email",
                    template=row.template,
                    cause_event_id=row.cause_event_id,
                    delivered_at=now,
                    attempts=attempts,
                ),
            )
        self.sent_total += 1
        log.info("email_sent", delivery_id=str(row.id), template=row.template)
        return True

    def _message(self, row: Any) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._settings.mail_from
        message["To"] = row.address
        message["Subject"] = row.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = message_id(row.id)
        message["Content-Language"] = row.language
        message.set_content(row.body)
        return message

    async def _retry_later(
        self, session: AsyncSession, row: Any, attempts: int, error: str
    ) -> None:
        if attempts >= self._settings.max_attempts:
            await self._failed(session, row, attempts, error)
            return
        delay = timedelta(seconds=min(600, 2**attempts))
        log.warning("email_retry", delivery_id=str(row.id), attempts=attempts, error=error)
        await session.execute(
            update(deliveries)
            .where(deliveries.c.id == row.id)
            .values(
                attempts=attempts,
                last_error=error[:2000],
                next_attempt_at=datetime.now(UTC) + delay,
            )
        )

    async def _failed(self, session: AsyncSession, row: Any, attempts: int, error: str) -> None:
        log.error("email_failed", delivery_id=str(row.id), attempts=attempts, error=error)
        await session.execute(
            update(deliveries)
            .where(deliveries.c.id == row.id)
            .values(status="failed", attempts=attempts, last_error=error[:2000])
        )
        await self._outbox.add(
            session,
            DeliveryFailedV1(
                delivery_id=row.id,
                recipient_id=row.recipient_id,
                channel="email",
                template=row.template,
                cause_event_id=row.cause_event_id,
                failed_at=datetime.now(UTC),
                attempts=attempts,
                reason=error[:500],
            ),
        )
