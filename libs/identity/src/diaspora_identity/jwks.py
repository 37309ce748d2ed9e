"""The issuer's signing keys (JWKS), fetched over HTTP and cached.

- The JWKS URL is given, or read from the issuer's OIDC discovery document
  (``<issuer>/.well-known/openid-configuration``, whose ``issuer`` must match).
- Keys are cached for ``max_age`` seconds; a token naming an unknown ``kid``
  (the issuer rotated its keys) triggers a refetch at once, at most one every
  ``min_refresh_interval`` seconds, so a flood of tokens with made-up key ids
  cannot turn the service into a load generator against the issuer.
- When a refetch fails, the keys already known stay in use.
- A document marked ``development_only`` (the dev IdP) is refused when the
  service runs in production mode.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import structlog
from jwt import PyJWK
from jwt.exceptions import PyJWKError

log = structlog.get_logger(__name__)

DEVELOPMENT_MARK = "development_only"
SUPPORTED_KEY_TYPES = frozenset({"RSA", "EC"})


class JwksUnavailable(RuntimeError):
    """The issuer's keys could not be fetched (and none are cached)."""


class DevelopmentIssuerRefused(RuntimeError):
    """A development-only issuer was configured while running in production mode."""


class JwksCache:
    def __init__(
        self,
        *,
        issuer: str,
        jwks_url: str | None = None,
        http: httpx.AsyncClient | None = None,
        max_age: float = 3600.0,
        min_refresh_interval: float = 30.0,
        production: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._issuer = issuer.rstrip("/")
        self._jwks_url = jwks_url
        self._http = http or httpx.AsyncClient(timeout=5.0)
        self._owns_http = http is None
        self._max_age = max_age
        self._min_refresh = min_refresh_interval
        self._production = production
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def key(self, kid: str) -> PyJWK | None:
        """The public key with this id, refetching the set when it is unknown or stale."""
        if self._fetched_at is None or self._clock() - self._fetched_at > self._max_age:
            await self._refresh(reason="expired" if self._fetched_at else "first use")
        found = self._keys.get(kid)
        if found is None and self._may_refetch():
            await self._refresh(reason="unknown key id")
            found = self._keys.get(kid)
        if not self._keys:
            # Still no key at all (the issuer was unreachable): cannot decide, not "invalid".
            raise JwksUnavailable("the issuer's keys are not available yet")
        return found

    def _may_refetch(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self._min_refresh

    async def _refresh(self, *, reason: str) -> None:
        before = self._fetched_at
        async with self._lock:
            if self._fetched_at != before:
                return  # another task refreshed meanwhile
            try:
                document = await self._fetch_jwks()
            except (httpx.HTTPError, ValueError) as error:
                # Count the attempt, so that an unreachable issuer is not hammered.
                self._fetched_at = self._clock()
                if not self._keys:
                    raise JwksUnavailable(
                        f"the issuer's keys could not be fetched: {error}"
                    ) from error
                log.warning("jwks_refresh_failed", error=repr(error), keeping=len(self._keys))
                return
            self._keys = _parse_keys(document)
            self._fetched_at = self._clock()
            self.fetches += 1
            log.info("jwks_fetched", reason=reason, keys=sorted(self._keys))

    async def _fetch_jwks(self) -> Mapping[str, Any]:
        url = self._jwks_url
        if url is None:
            discovery = await self._get_json(f"{self._issuer}/.well-known/openid-configuration")
            if str(discovery.get("issuer", "")).rstrip("/") != self._issuer:
                raise ValueError(
                    f"the discovery document names issuer {discovery.get('issuer')!r}, "
                    f"expected {self._issuer!r}"
                )
            self._refuse_development(discovery)
            jwks_uri = discovery.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise ValueError("the discovery document has no jwks_uri")
            url = self._jwks_url = jwks_uri
        document = await self._get_json(url)
        self._refuse_development(document)
        return document

    def _refuse_development(self, document: Mapping[str, Any]) -> None:
        if self._production and document.get(DEVELOPMENT_MARK):
            raise DevelopmentIssuerRefused(
                "production mode refuses a development-only identity provider"
            )

    async def _get_json(self, url: str) -> Mapping[str, Any]:
        response = await self._http.get(url, headers={"accept": "application/json"})
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, dict):
            raise ValueError(f"{url} did not return a JSON object")
        return body

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()


def _parse_keys(document: Mapping[str, Any]) -> dict[str, PyJWK]:
    keys: dict[str, PyJWK] = {}
    raw = document.get("keys")
    if not isinstance(raw, list):
        raise ValueError("the JWKS has no keys list")
    for item in raw:
        if not isinstance(item, dict):
            continue
        kid, kty, use = item.get("kid"), item.get("kty"), item.get("use", "sig")
        if not isinstance(kid, str) or kty not in SUPPORTED_KEY_TYPES or use != "sig":
            continue  # symmetric keys ("oct") and encryption keys are never used to verify
        if "d" in item:
            continue  # a private key published by mistake is not trusted either
        try:
            keys[kid] = PyJWK.from_dict(item)
        except PyJWKError as error:
            log.warning("jwks_key_skipped", kid=kid, error=str(error))
    return keys
