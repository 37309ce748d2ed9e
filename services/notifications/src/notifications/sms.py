"""SMS through a pluggable provider; one real adapter for HTTP providers.

``SmsProvider`` is the interface: ``send`` returns the provider's message id or
raises ``PermanentFailure`` (the provider refused for good: 4xx) or any other
exception (worth retrying later). ``HttpSmsProvider`` posts a configurable JSON
payload with a configurable auth header, retries 5xx answers and timeouts with
backoff within one attempt, and never retries a 4xx.
"""

from __future__ import annotations

import asyncio
import json
from string import Template
from typing import Protocol

import httpx
import structlog

from notifications.errors import PermanentFailure
from notifications.settings import NotificationsSettings

log = structlog.get_logger(__name__)


class TransientFailure(Exception):
    """The provider did not take the message now (5xx, timeout): retry later."""


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
        last: str = ""
        for attempt in range(1, self._tries + 1):
            try:
                response = await self._client.post(
                    self._url, content=content, headers=self._headers
                )
            except (httpx.TimeoutException, httpx.TransportError) as error:
                last = f"{type(error).__name__}: {error}"
            else:
                if response.status_code < 300:
                    try:
                        return str(response.json().get("id", ""))
                    except ValueError:
                        return ""
                if 400 <= response.status_code < 500:
                    raise PermanentFailure(
                        f"SMS provider refused: {response.status_code} {response.text[:200]}"
                    )
                last = f"SMS provider error {response.status_code}"
            if attempt < self._tries:
                delay = self._first_backoff * 2 ** (attempt - 1)
                log.warning("sms_provider_retry", attempt=attempt, retry_in=delay, error=last)
                await asyncio.sleep(delay)
        raise TransientFailure(last)

    async def close(self) -> None:
        await self._client.aclose()
