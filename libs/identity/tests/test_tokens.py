"""Token verification against a JWKS served over (mock) HTTP: every refusal has its reason."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest

from diaspora_identity.jwks import DevelopmentIssuerRefused, JwksCache, JwksUnavailable
from diaspora_identity.principal import Role
from diaspora_identity.testing import LocalIssuer, SigningKey, citizen, officer
from diaspora_identity.tokens import TokenRejected, TokenVerifier, VerifierConfig

ISSUER = "https://idp.example.test/realms/diaspora"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def jwks_client(issuer: LocalIssuer, calls: list[str] | None = None) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        if calls is not None:
            calls.append(request.url.path)
        if request.url.path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(200, json=issuer.discovery())
        if request.url.path.endswith("/jwks.json"):
            return httpx.Response(200, json=issuer.jwks())
        return httpx.Response(404)

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


def verifier_for(
    issuer: LocalIssuer,
    *,
    calls: list[str] | None = None,
    clock: FakeClock | None = None,
    production: bool = False,
    min_refresh: float = 30.0,
    cache_entries: int = 0,
    verify_clock: FakeClock | None = None,
) -> TokenVerifier:
    keys = JwksCache(
        issuer=issuer.issuer,
        http=jwks_client(issuer, calls),
        min_refresh_interval=min_refresh,
        production=production,
        clock=clock or FakeClock(),
    )
    # No cache of verified tokens unless a test is about it: each verify checks the token.
    return TokenVerifier(
        VerifierConfig(issuer=issuer.issuer, audience="diaspora-api"),
        keys,
        cache_entries=cache_entries,
        **({"clock": verify_clock} if verify_clock else {}),
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any], header: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."


@pytest.fixture
def issuer() -> LocalIssuer:
    return LocalIssuer(ISSUER)


async def test_a_valid_token_gives_the_principal(issuer: LocalIssuer) -> None:
    principal = await verifier_for(issuer).verify(issuer.token(officer("fr-paris", "be-brussels")))
    assert principal.roles == {Role.EMBASSY_OFFICER}
    assert principal.embassies == {"fr-paris", "be-brussels"}
    assert principal.is_staff
    assert not principal.is_service


async def test_es256_tokens_are_accepted_too() -> None:
    issuer = LocalIssuer(ISSUER, algorithm="ES256")
    principal = await verifier_for(issuer).verify(issuer.token(citizen("c-1")))
    assert principal.subject == "c-1"


async def rejected(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenRejected) as caught:
        await verifier.verify(token)
    assert caught.value.code == "invalid_token"
    return caught.value.reason


async def test_expired_token(issuer: LocalIssuer) -> None:
    token = issuer.token(citizen(), now=time.time() - 7200, lifetime=600)
    assert "expired" in await rejected(verifier_for(issuer), token)


async def test_expiry_within_the_leeway_is_tolerated(issuer: LocalIssuer) -> None:
    token = issuer.token(citizen(), now=time.time() - 610, lifetime=600)
    assert await verifier_for(issuer).verify(token)


async def test_not_yet_valid_token(issuer: LocalIssuer) -> None:
    future = int(time.time()) + 3600
    token = issuer.token(citizen(), nbf=future, iat=future - 3600)
    assert "not valid yet" in await rejected(verifier_for(issuer), token)


async def test_wrong_issuer(issuer: LocalIssuer) -> None:
    token = issuer.token(citizen(), iss="https://evil.example/realms/diaspora")
    assert "another issuer" in await rejected(verifier_for(issuer), token)


async def test_wrong_audience(issuer: LocalIssuer) -> None:
    token = issuer.token(citizen(), aud="some-other-api")
    assert "another audience" in await rejected(verifier_for(issuer), token)


async def test_missing_expiry(issuer: LocalIssuer) -> None:
    claims = issuer.claims(citizen())
    del claims["exp"]
    assert "'exp'" in await rejected(verifier_for(issuer), issuer.sign(claims))


async def test_alg_none_is_refused(issuer: LocalIssuer) -> None:
    token = unsigned(issuer.claims(citizen()), {"alg": "none", "kid": issuer.current_key.kid})
    assert "'none'" in await rejected(verifier_for(issuer), token)


async def test_hs256_signed_with_the_public_key_is_refused(issuer: LocalIssuer) -> None:
    # The classic key-confusion attack: HMAC keyed with the issuer's published public key.
    header = {"alg": "HS256", "typ": "JWT", "kid": issuer.current_key.kid}
    signing_input = (
        f"{b64(json.dumps(header).encode())}."
        f"{b64(json.dumps(issuer.claims(officer('fr-paris'))).encode())}"
    )
    mac = hmac.new(issuer.current_key.public_pem(), signing_input.encode(), hashlib.sha256)
    token = f"{signing_input}.{b64(mac.digest())}"
    assert "'HS256'" in await rejected(verifier_for(issuer), token)


async def test_tampered_payload_is_refused(issuer: LocalIssuer) -> None:
    token = issuer.token(citizen())
    header, _payload, signature = token.split(".")
    forged = issuer.claims(officer("fr-paris"))  # upgrade oneself to an officer
    tampered = f"{header}.{b64(json.dumps(forged).encode())}.{signature}"
    assert "signature" in await rejected(verifier_for(issuer), tampered)


async def test_a_key_the_issuer_does_not_publish_is_refused(issuer: LocalIssuer) -> None:
    stranger = SigningKey.generate()
    token = issuer.token(citizen(), key=stranger)
    assert "does not publish" in await rejected(verifier_for(issuer), token)


async def test_a_foreign_key_reusing_a_published_kid_fails_the_signature(
    issuer: LocalIssuer,
) -> None:
    impostor = SigningKey.generate(kid=issuer.current_key.kid)
    token = issuer.token(citizen(), key=impostor)
    assert "signature" in await rejected(verifier_for(issuer), token)


async def test_algorithm_must_fit_the_key_type(issuer: LocalIssuer) -> None:
    ec_key = SigningKey.generate("ES256", kid=issuer.current_key.kid)
    token = issuer.token(citizen(), key=ec_key)  # ES256 header, RSA key published
    assert "does not fit" in await rejected(verifier_for(issuer), token)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 20_000])
async def test_garbage_is_refused(issuer: LocalIssuer, garbage: str) -> None:
    assert await rejected(verifier_for(issuer), garbage)


async def test_rotation_refetches_the_keys_once_and_old_tokens_keep_working(
    issuer: LocalIssuer,
) -> None:
    calls: list[str] = []
    clock = FakeClock()
    verifier = verifier_for(issuer, calls=calls, clock=clock)
    old_token = issuer.token(citizen("before"))
    assert (await verifier.verify(old_token)).subject == "before"
    fetches = len(calls)

    clock.now += 60  # past the refetch rate limit
    issuer.rotate()
    new_token = issuer.token(citizen("after"))
    assert (await verifier.verify(new_token)).subject == "after"
    assert len(calls) == fetches + 1  # one refetch of the JWKS (the URL is remembered)
    assert (await verifier.verify(old_token)).subject == "before"
    assert len(calls) == fetches + 1


async def test_unknown_kids_refetch_at_most_once_per_interval(issuer: LocalIssuer) -> None:
    calls: list[str] = []
    clock = FakeClock()
    verifier = verifier_for(issuer, calls=calls, clock=clock)
    await verifier.verify(issuer.token(citizen()))
    fetches = len(calls)
    clock.now += 60
    for n in range(20):
        token = issuer.token(citizen(), key=SigningKey.generate("ES256", kid=f"made-up-{n}"))
        await rejected(verifier, token)
    assert len(calls) == fetches + 1

    # A key rotated within the interval is picked up once the interval has passed.
    issuer.rotate()
    token = issuer.token(citizen("late"))
    await rejected(verifier, token)
    clock.now += 31
    assert (await verifier.verify(token)).subject == "late"


async def test_unreachable_issuer_is_unavailable_not_invalid() -> None:
    def down(_request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    clock = FakeClock()
    keys = JwksCache(
        issuer=ISSUER, http=httpx.AsyncClient(transport=httpx.MockTransport(down)), clock=clock
    )
    verifier = TokenVerifier(VerifierConfig(issuer=ISSUER, audience="diaspora-api"), keys)
    token = LocalIssuer(ISSUER).token(citizen())
    with pytest.raises(JwksUnavailable):
        await verifier.verify(token)
    clock.now += 1  # within the refetch interval: still "unavailable", never "invalid"
    with pytest.raises(JwksUnavailable):
        await verifier.verify(token)


async def test_production_refuses_a_development_issuer(issuer: LocalIssuer) -> None:
    with pytest.raises(DevelopmentIssuerRefused):
        await verifier_for(issuer, production=True).verify(issuer.token(citizen()))


async def test_discovery_must_name_the_configured_issuer(issuer: LocalIssuer) -> None:
    other = LocalIssuer("https://other.example.test/realms/x", keys=issuer.keys)
    keys = JwksCache(issuer=ISSUER, http=jwks_client(other))
    verifier = TokenVerifier(VerifierConfig(issuer=ISSUER, audience="diaspora-api"), keys)
    with pytest.raises(JwksUnavailable):
        await verifier.verify(issuer.token(citizen()))


def test_symmetric_algorithms_cannot_be_configured() -> None:
    with pytest.raises(ValueError, match="not allowed"):
        VerifierConfig(issuer=ISSUER, audience="a", algorithms=("RS256", "HS256"))


async def test_a_verified_token_is_remembered_until_the_cache_time_or_its_expiry(
    issuer: LocalIssuer,
) -> None:
    calls: list[str] = []
    jwks_clock, clock = FakeClock(), FakeClock()
    clock.now = time.time()
    verifier = verifier_for(
        issuer, calls=calls, clock=jwks_clock, cache_entries=10, verify_clock=clock
    )
    token = issuer.token(citizen("c-1"), now=clock.now, lifetime=600)
    assert (await verifier.verify(token)).subject == "c-1"
    fetches = len(calls)

    # Its key withdrawn (and the JWKS due for a refetch): the remembered token passes...
    issuer.rotate(keep_previous=False)
    jwks_clock.now += 3601
    assert (await verifier.verify(token)).subject == "c-1"
    assert len(calls) == fetches
    # ...for at most the cache time; then it is verified again, and refused.
    clock.now += 61
    assert "does not publish" in await rejected(verifier, token)


async def test_a_token_is_remembered_no_longer_than_its_expiry_plus_leeway(
    issuer: LocalIssuer,
) -> None:
    jwks_clock, clock = FakeClock(), FakeClock()
    clock.now = time.time()
    verifier = verifier_for(issuer, clock=jwks_clock, cache_entries=10, verify_clock=clock)
    token = issuer.token(citizen("c-2"), now=clock.now - 595, lifetime=600)  # 5 s left
    assert (await verifier.verify(token)).subject == "c-2"
    issuer.rotate(keep_previous=False)  # from now on, verifying it again fails
    jwks_clock.now += 3601
    clock.now += 20  # expired, within the 30 s leeway: remembered
    assert (await verifier.verify(token)).subject == "c-2"
    clock.now += 20  # past expiry + leeway (35 s), before the cache time (60 s): checked again
    assert "does not publish" in await rejected(verifier, token)


async def test_a_refused_token_is_not_remembered(issuer: LocalIssuer) -> None:
    verifier = verifier_for(issuer, cache_entries=10)
    token = issuer.token(citizen(), now=time.time() - 7200, lifetime=600)
    for _ in range(2):
        assert "expired" in await rejected(verifier, token)
