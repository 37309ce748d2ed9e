"""The email channel: SMTP, one reused connection per concurrent sender.

A crash after the server accepted a message but before the row is marked sent
resends it: the Message-ID is the delivery id, so the copy carries the same
Message-ID and mail clients show it once (see docs/notifications.md).
"""

from __future__ import annotations

import contextlib
import email.errors
import email.policy
import email.utils
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any

import aiosmtplib
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.outbox import OutboxWriter
from notifications.deliveries.domain import Clock, PermanentFailure, message_id, utc_now
from notifications.deliveries.sender import DeliverySender, Signal
from notifications.settings import NotificationsSettings


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

    async def send_raw(self, sender: str, recipients: list[str], message: bytes) -> None:
        """Send an already serialised message (the email package's generator is slow)."""
        try:
            client = await self._connected()
            await client.sendmail(sender, recipients, message)
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [e.code for e in error.recipients]
            if all(500 <= c < 600 for c in codes):
                raise PermanentFailure(
                    "; ".join(f"{e.code} {e.message}" for e in error.recipients)
                ) from error
            raise
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


# Every header is built by the email package's header machinery (email.headerregistry
# under the default policy): it folds long values and refuses a CR or LF in any of them
# (issue 15: a registration's name carried "\r\nReply-To: ..." into a welcome email).
# Never put a header together with string formatting. (Lines end with LF, as before;
# the SMTP client sends them as CRLF.)
_POLICY = email.policy.default.clone(max_line_length=998)  # fold only past the RFC limit


class EmailTransport:
    def __init__(self, settings: NotificationsSettings) -> None:
        self._settings = settings
        self.connection = SmtpConnection(settings)
        sender = _POLICY.header_factory("From", settings.mail_from)
        (self._from,) = sender.addresses
        self._envelope_from = self._from.addr_spec

    def message(self, row: Any) -> EmailMessage:
        """The message; ValueError if a value cannot be a header (CR, LF, bad address)."""
        message = EmailMessage(policy=_POLICY)
        message["From"] = self._from
        message["To"] = Address(addr_spec=row.address)
        message["Subject"] = row.subject
        message["Date"] = email.utils.format_datetime(datetime.now(UTC))
        message["Message-ID"] = message_id(row.id)
        message.set_content(row.body, charset="utf-8", cte="quoted-printable")
        message["Content-Language"] = row.language  # (set_content drops Content-* headers)
        return message

    def message_bytes(self, row: Any) -> bytes:
        try:
            return self.message(row).as_bytes(policy=_POLICY)
        except (ValueError, email.errors.HeaderParseError) as error:
            # Nothing this row holds will ever make a valid message: do not retry it.
            raise PermanentFailure(f"not a valid message: {error}") from error

    async def deliver(self, row: Any) -> None:
        await self.connection.send_raw(self._envelope_from, [row.address], self.message_bytes(row))

    async def close(self) -> None:
        await self.connection.close()


class EmailSender(DeliverySender):
    """The email channel: ``email_senders`` senders, each with its own SMTP connection."""

    def __init__(
        self,
        *,
        settings: NotificationsSettings,
        sessions: async_sessionmaker[AsyncSession],
        outbox: OutboxWriter,
        work_available: Signal,
        idle_poll: float = 0.5,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(
            channel="email",
            transports=[EmailTransport(settings) for _ in range(settings.email_senders)],
            settings=settings,
            sessions=sessions,
            outbox=outbox,
            work_available=work_available,
            idle_poll=idle_poll,
            clock=clock,
        )
