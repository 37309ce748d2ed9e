"""A local token issuer for tests and for the development identity provider.

DEVELOPMENT AND TESTS ONLY. It signs tokens with keys it generates itself and
publishes them as a JWKS marked ``development_only``, which services refuse in
production mode (and production settings refuse its issuer URL).

    issuer = LocalIssuer("http://127.0.0.1:8090/dev-idp")
    token = issuer.token(issuer.officer("fr-paris"))
    async with serve_app(issuer.asgi_app(), port=8090): ...
"""

from __future__ import annotations

import hmac
import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from diaspora_identity.jwks import DEVELOPMENT_MARK
from diaspora_identity.principal import Role

DEFAULT_AUDIENCE = "diaspora-api"
# DEVELOPMENT ONLY client-credentials clients of the local issuers (the services asking
# the registry's key service for persons' data keys; secrets as diaspora_events.shredding
# defaults them outside production).
DEV_SERVICE_CLIENTS = {
    "matching": "dev-only-matching",
    "notifications": "dev-only-notifications",
    "consular": "dev-only-consular",
    "returnees": "dev-only-returnees",
}
DEV_CLIENT = "diaspora-dev-cli"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private_key: PrivateKey

    @classmethod
    def generate(cls, algorithm: str = "RS256", kid: str | None = None) -> SigningKey:
        private: PrivateKey
        if algorithm == "RS256":
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif algorithm == "ES256":
            private = ec.generate_private_key(ec.SECP256R1())
        else:
            raise ValueError(f"unsupported algorithm {algorithm}")
        kid = kid or f"dev-{uuid.uuid4().hex[:12]}"
        return cls(kid=kid, algorithm=algorithm, private_key=private)

    @classmethod
    def from_pem(cls, pem: bytes, *, kid: str) -> SigningKey:
        private = serialization.load_pem_private_key(pem, password=None)
        if isinstance(private, rsa.RSAPrivateKey):
            return cls(kid=kid, algorithm="RS256", private_key=private)
        if isinstance(private, ec.EllipticCurvePrivateKey):
            return cls(kid=kid, algorithm="ES256", private_key=private)
        raise ValueError("only RSA and EC P-256 keys are supported")

    def pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def public_jwk(self) -> dict[str, Any]:
        public = self.private_key.public_key()
        raw = (
            RSAAlgorithm.to_jwk(public)
            if isinstance(public, rsa.RSAPublicKey)
            else ECAlgorithm.to_jwk(public)
        )
        jwk: dict[str, Any] = json.loads(raw)
        jwk.update(kid=self.kid, alg=self.algorithm, use="sig")
        return jwk


@dataclass(frozen=True)
class Persona:
    """Claims describing one caller (see diaspora_identity.principal for their meaning)."""

    subject: str
    roles: tuple[str, ...]
    embassies: tuple[str, ...] = ()
    partner_org: str | None = None
    member_id: UUID | None = None
    name: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "sub": self.subject,
            "realm_access": {"roles": list(self.roles)},
            "preferred_username": self.name or self.subject,
        }
        if self.embassies:
            claims["embassies"] = list(self.embassies)
        if self.partner_org:
            claims["partner_org"] = self.partner_org
        if self.member_id:
            claims["member_id"] = str(self.member_id)
        claims.update(self.extra)
        return claims


def _subject(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def citizen(subject: str | None = None, member_id: UUID | None = None) -> Persona:
    return Persona(subject or _subject("citizen"), (Role.CITIZEN.value,), member_id=member_id)


def officer(*embassies: str, subject: str | None = None) -> Persona:
    return Persona(
        subject or _subject("officer"), (Role.EMBASSY_OFFICER.value,), embassies=tuple(embassies)
    )


def coordinator(subject: str | None = None) -> Persona:
    return Persona(subject or _subject("coordinator"), (Role.MINISTRY_COORDINATOR.value,))


def case_worker(subject: str | None = None) -> Persona:
    """A case worker of the ministry's return cell (returnees)."""
    return Persona(subject or _subject("case-worker"), (Role.CASE_WORKER.value,))


def caseworker(partner_org: str, subject: str | None = None) -> Persona:
    return Persona(
        subject or _subject("caseworker"),
        (Role.PARTNER_CASEWORKER.value,),
        partner_org=partner_org,
    )


def analyst(subject: str | None = None) -> Persona:
    return Persona(subject or _subject("analyst"), (Role.ANALYST.value,))


def admin(subject: str | None = None) -> Persona:
    return Persona(subject or _subject("admin"), (Role.ADMIN.value,))


def service_account(client: str) -> Persona:
    return Persona(
        f"service-account-{client}",
        (Role.SERVICE.value,),
        extra={"azp": client, "client_id": client},
    )


def persona_for(
    role: str,
    *,
    subject: str | None = None,
    embassies: Sequence[str] = (),
    partner_org: str | None = None,
    member_id: UUID | None = None,
) -> Persona:
    """A persona for one role by name (the dev CLI's `--role`)."""
    Role(role)  # raises ValueError for an unknown role
    return Persona(
        subject or _subject(role.replace("_", "-")),
        (role,),
        embassies=tuple(embassies),
        partner_org=partner_org,
        member_id=member_id,
    )


class LocalIssuer:
    """Signs tokens with its own keys and publishes them (JWKS + OIDC discovery)."""

    def __init__(
        self,
        issuer: str,
        *,
        audience: str = DEFAULT_AUDIENCE,
        keys: Iterable[SigningKey] | None = None,
        algorithm: str = "RS256",
        clients: Mapping[str, str] | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        # OAuth2 client-credentials clients (id -> secret): services fetching their own
        # tokens (e.g. from the registry's key service) at ``{issuer}/token``.
        self.clients = dict(clients or {})
        self.audience = audience
        self.keys: list[SigningKey] = list(keys) if keys else [SigningKey.generate(algorithm)]

    @property
    def current_key(self) -> SigningKey:
        return self.keys[-1]

    @property
    def jwks_path(self) -> str:
        return urlsplit(self.issuer).path + "/jwks.json"

    @property
    def jwks_url(self) -> str:
        return self.issuer + "/jwks.json"

    def rotate(self, *, algorithm: str | None = None, keep_previous: bool = True) -> SigningKey:
        """A new current key; the previous ones stay published unless ``keep_previous`` is off."""
        key = SigningKey.generate(algorithm or self.current_key.algorithm)
        self.keys = [*self.keys, key] if keep_previous else [key]
        return key

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in self.keys], DEVELOPMENT_MARK: True}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_url,
            "id_token_signing_alg_values_supported": sorted({k.algorithm for k in self.keys}),
            "claims_supported": [
                "sub",
                "realm_access",
                "embassies",
                "partner_org",
                "member_id",
                "preferred_username",
            ],
            "token_endpoint": self.issuer + "/token",
            "grant_types_supported": ["client_credentials"],
            DEVELOPMENT_MARK: True,
            "description": "DEVELOPMENT ONLY identity provider of the embedded platform.",
        }

    def claims(
        self, persona: Persona, *, lifetime: float = 3600.0, now: float | None = None
    ) -> dict[str, Any]:
        issued = int(now if now is not None else time.time())
        return {
            "iss": self.issuer,
            "aud": self.audience,
            "iat": issued,
            "nbf": issued,
            "exp": issued + int(lifetime),
            "jti": uuid.uuid4().hex,
            "azp": DEV_CLIENT,
            "typ": "Bearer",
            **persona.claims(),
        }

    def sign(self, claims: Mapping[str, Any], *, key: SigningKey | None = None) -> str:
        key = key or self.current_key
        return jwt.encode(
            dict(claims), key.private_key, algorithm=key.algorithm, headers={"kid": key.kid}
        )

    def token(
        self,
        persona: Persona,
        *,
        lifetime: float = 3600.0,
        now: float | None = None,
        key: SigningKey | None = None,
        **overrides: Any,
    ) -> str:
        """A signed access token for ``persona``; ``overrides`` replace claims (tests)."""
        claims = self.claims(persona, lifetime=lifetime, now=now)
        claims.update(overrides)
        return self.sign(claims, key=key)

    def headers(self, persona: Persona, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(persona, **kwargs)}"}

    def service_env(self, prefix: str, *, min_refresh_seconds: float = 0.0) -> dict[str, str]:
        """Environment pointing a service (``REGISTRY``, ``NOTIFICATIONS``...) at this issuer."""
        return {
            f"{prefix}_OIDC_ISSUER": self.issuer,
            f"{prefix}_OIDC_AUDIENCE": self.audience,
            f"{prefix}_OIDC_JWKS_MIN_REFRESH_SECONDS": str(min_refresh_seconds),
        }

    def asgi_app(self) -> Starlette:
        """JWKS and discovery over HTTP, at the issuer URL's path."""
        base = urlsplit(self.issuer).path

        async def discovery(_request: Request) -> JSONResponse:
            return JSONResponse(self.discovery())

        async def jwks(_request: Request) -> JSONResponse:
            return JSONResponse(self.jwks(), headers={"Cache-Control": "max-age=60"})

        return Starlette(
            routes=[
                Route(f"{base}/.well-known/openid-configuration", discovery),
                Route(f"{base}/jwks.json", jwks),
                Route(f"{base}/token", self.token_endpoint, methods=["POST"]),
            ]
        )

    async def token_endpoint(self, request: Request) -> JSONResponse:
        """OAuth2 client credentials (RFC 6749 4.4): a ``service`` token for a known client
        authenticated by HTTP Basic or form ``client_id``/``client_secret``."""
        form = await request.form()
        client_id, secret = str(form.get("client_id") or ""), str(form.get("client_secret") or "")
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("basic "):
            import base64
            from urllib.parse import unquote

            decoded = base64.b64decode(authorization[6:]).decode("utf-8", "replace")
            client_id, _, secret = decoded.partition(":")
            client_id, secret = unquote(client_id), unquote(secret)
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        expected = self.clients.get(client_id)
        if expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        lifetime = 300
        return JSONResponse(
            {
                "access_token": self.token(service_account(client_id), lifetime=lifetime),
                "token_type": "Bearer",
                "expires_in": lifetime,
            },
            headers={"Cache-Control": "no-store"},
        )
