"""Bearer token verification: OIDC access tokens (JWT) signed by the issuer.

What a token must be to pass:
- signed with an allow-listed asymmetric algorithm (RS256 or ES256): ``none``
  and every HMAC algorithm are refused before any key is looked at, so an
  HS256 token "signed" with the issuer's public key can never verify;
- signed by a key of the issuer's JWKS, named by the token's ``kid``, whose key
  type matches the algorithm (an RSA key never verifies an ES256 token);
- ``iss`` equal to the configured issuer, ``aud`` containing the configured
  audience, ``exp`` in the future and ``nbf``/``iat`` not in the future (with a
  small leeway for clock skew), and a ``sub``.

Each refusal names its reason: it goes to the client in the problem details
and the ``WWW-Authenticate`` header (RFC 6750), never the token itself.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.exceptions import (
    DecodeError,
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidSignatureError,
    InvalidTokenError,
    MissingRequiredClaimError,
)

from diaspora_identity.jwks import JwksCache
from diaspora_identity.principal import InvalidClaims, Principal, principal_from_claims

ALLOWED_ALGORITHMS: tuple[str, ...] = ("RS256", "ES256")
KEY_TYPE_OF: dict[str, str] = {"RS256": "RSA", "ES256": "EC"}
DEFAULT_LEEWAY_SECONDS = 30
MAX_TOKEN_LENGTH = 16_384
# Verified tokens are remembered (by their exact text) this long at most, and never
# past their expiry: a client that sends the same token with each call is verified
# once. A key withdrawn from the JWKS stops being accepted within this time.
CACHE_SECONDS = 60.0
CACHE_ENTRIES = 4096
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


class TokenRejected(Exception):
    """The token is missing or invalid; ``reason`` is safe to show to the client."""

    def __init__(self, reason: str, *, code: str = "invalid_token") -> None:
        super().__init__(reason)
        self.reason = reason
        # RFC 6750 error code: "invalid_token" or "invalid_request"; None when no token was sent.
        self.code: str | None = code


class TokenMissing(TokenRejected):
    def __init__(self) -> None:
        super().__init__("no bearer token was sent (Authorization: Bearer <token>)")
        self.code = None


@dataclass(frozen=True)
class VerifierConfig:
    issuer: str
    audience: str
    leeway_seconds: float = DEFAULT_LEEWAY_SECONDS
    algorithms: tuple[str, ...] = ALLOWED_ALGORITHMS

    def __post_init__(self) -> None:
        unsafe = [a for a in self.algorithms if a not in KEY_TYPE_OF]
        if unsafe:
            raise ValueError(f"algorithms {unsafe} are not allowed; use {list(KEY_TYPE_OF)}")


class TokenVerifier:
    def __init__(
        self,
        config: VerifierConfig,
        keys: JwksCache,
        *,
        cache_seconds: float = CACHE_SECONDS,
        cache_entries: int = CACHE_ENTRIES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._keys = keys
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._cache_entries = cache_entries
        # token -> (accepted until, as time.time(); principal)
        self._verified: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; raises TokenRejected with the reason."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenRejected("the token is too long")
        now = self._clock()
        cached = self._verified.get(token)
        if cached is not None:
            if now < cached[0]:
                self._verified.move_to_end(token)
                return cached[1]
            del self._verified[token]
        claims = await self._verified_claims(token)
        try:
            principal = principal_from_claims(claims, audience=self.config.audience)
        except InvalidClaims as error:
            raise TokenRejected(str(error)) from None
        if self._cache_entries > 0:
            expires = float(claims["exp"]) + self.config.leeway_seconds
            until = min(expires, now + self._cache_seconds)
            self._verified[token] = (until, principal)
            while len(self._verified) > self._cache_entries:
                self._verified.popitem(last=False)
        return principal

    async def _verified_claims(self, token: str) -> dict[str, Any]:
        header = _unverified_header(token)
        algorithm = header.get("alg")
        if algorithm not in self.config.algorithms:
            raise TokenRejected(
                f"the token is signed with {algorithm!r}; accepted: "
                + ", ".join(self.config.algorithms)
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("the token does not name its signing key (kid)")
        key = await self._keys.key(kid)
        if key is None:
            raise TokenRejected("the token is signed by a key the issuer does not publish")
        if key.key_type != KEY_TYPE_OF[algorithm]:
            raise TokenRejected(f"the token's algorithm {algorithm} does not fit key {kid}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=self.config.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except ExpiredSignatureError:
            raise TokenRejected("the token has expired") from None
        except ImmatureSignatureError:
            raise TokenRejected("the token is not valid yet (nbf)") from None
        except InvalidIssuedAtError:
            raise TokenRejected("the token claims to be issued in the future (iat)") from None
        except InvalidIssuerError:
            raise TokenRejected("the token was issued by another issuer") from None
        except InvalidAudienceError:
            raise TokenRejected("the token is meant for another audience") from None
        except InvalidSignatureError:
            raise TokenRejected("the token's signature does not verify") from None
        except MissingRequiredClaimError as error:
            raise TokenRejected(f"the token lacks the {error.claim!r} claim") from None
        except DecodeError:
            raise TokenRejected("the token is not a well-formed JWT") from None
        except InvalidTokenError:
            raise TokenRejected("the token is not valid") from None
        return claims


def _unverified_header(token: str) -> dict[str, Any]:
    """The token's header, read only to choose the key; ``jwt.decode`` then checks the
    whole token. (PyJWT's ``get_unverified_header`` decodes and checks all three
    parts character by character in Python, which ``jwt.decode`` does again.)"""
    head, dot, _rest = token.partition(".")
    try:
        if not dot or not _SEGMENT.fullmatch(head):
            raise ValueError("not base64url")
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error):
        raise TokenRejected("the token is not a well-formed JWT") from None
    if not isinstance(header, dict):
        raise TokenRejected("the token is not a well-formed JWT")
    return header
