"""The SMS channel: a pluggable provider; one real adapter for HTTP providers.

``SmsProvider`` is the interface: ``send`` returns the provider's message id or
raises ``PermanentFailure`` (the provider refused for good: 4xx) or any other
exception (worth retrying later). ``HttpSmsProvider`` posts a configurable JSON
payload with a configurable auth header, retries 5xx answers and timeouts with
backoff within one attempt (tenacity), and never retries a 4xx.
"""

from __future__ import annotations

import json
from string import Template
from typing import Any, Protocol

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from diaspora_events.outbox import OutboxWriter
from notifications.deliveries.domain import Clock, PermanentFailure, TransientFailure, utc_now
from notifications.deliveries.sender import DeliverySender, Signal
from notifications.settings import NotificationsSettings

log = structlog.get_logger(__name__)


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.warning(
        "sms_provider_retry",
        attempt=state.attempt_number,
        retry_in=state.next_action.sleep if state.next_action else None,
        error=str(error),
    )


class SmsProvider(Protocol):
    async def send(self, *, to: str, text: str, reference: str) -> str: ...

    async def close(self) -> None: ...


class HttpSmsProvider:
    def __init__(
        self,
        *,
        url: str,
        auth_header: str = "Authorization",
        auth_value: str | None = None,
        payload_template: str = '{"to": $to, "text": $text, "reference": $reference}',
        timeout: float = 5.0,
        tries: int = 3,
        first_backoff: float = 0.2,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = url
        self._headers = {"Content-Type": "application/json"}
        if auth_value:
            self._headers[auth_header] = auth_value
        self._payload = Template(payload_template)
        self._tries = max(1, tries)
        self._first_backoff = first_backoff
        self._client = client or httpx.AsyncClient(timeout=timeout)

    @classmethod
    def from_settings(cls, settings: NotificationsSettings) -> HttpSmsProvider:
        assert settings.sms_provider_url
        return cls(
            url=settings.sms_provider_url,
            auth_header=settings.sms_auth_header,
            auth_value=settings.sms_auth_value,
            payload_template=settings.sms_payload_template,
            timeout=settings.sms_timeout,
            tries=settings.sms_http_tries,
        )

    def payload(self, *, to: str, text: str, reference: str) -> bytes:
        body = self._payload.substitute(
            to=json.dumps(to), text=json.dumps(text), reference=json.dumps(reference)
        )
        json.loads(body)  # a broken template fails here, not at the provider
        return body.encode()

    async def send(self, *, to: str, text: str, reference: str) -> str:
        content = self.payload(to=to, text=text, reference=reference)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._tries),
            wait=wait_exponential(multiplier=self._first_backoff, exp_base=2),
            retry=retry_if_exception_type(TransientFailure),
            before_sleep=_log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._post(content)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _post(self, content: bytes) -> str:
        """One request: the provider's id, ``PermanentFailure`` (4xx) or ``TransientFailure``."""
        try:
            response = await self._client.post(self._url, content=content, headers=self._headers)
        except (httpx.TimeoutException, httpx.TransportError) as error:
            raise TransientFailure(f"{type(error).__name__}: {error}") from error
        if response.status_code < 300:
            try:
                return str(response.json().get("id", ""))
            except ValueError:
                return ""
        if 400 <= response.status_code < 500:
            raise PermanentFailure(
                f"SMS provider refused: {response.status_code} {response.text[:200]}"
            )
        raise TransientFailure(f"SMS provider error {response.status_code}")

    async def close(self) -> None:
        await self._client.aclose()


class SmsTransport:
    """Shares one provider (its HTTP client pools connections) between senders."""

    def __init__(self, provider: SmsProvider) -> None:
        self._provider = provider

    async def deliver(self, row: Any) -> None:
        await self._provider.send(to=row.address, text=row.sms_text, reference=str(row.id))

    async def close(self) -> None:
        return None


class SmsSender(DeliverySender):
    def __init__(
        self,
        *,
        provider: SmsProvider,
        settings: NotificationsSettings,
        sessions: async_sessionmaker[AsyncSession],
        outbox: OutboxWriter,
        work_available: Signal,
        idle_poll: float = 0.5,
        clock: Clock = utc_now,
    ) -> None:
        transport = SmsTransport(provider)
        super().__init__(
            channel="sms",
            transports=[transport for _ in range(settings.sms_senders)],
            settings=settings,
            sessions=sessions,
            outbox=outbox,
            work_available=work_available,
            idle_poll=idle_poll,
            clock=clock,
            on_close=provider.close,
        )
