"""The ministry's keys for issued credentials: the current Ed25519 key that signs, and the
public keys of earlier ones, all published in the JWKS (docs/consular.md, "Credentials").

A service handle (built by ``consular.bootstrap``, held by ``consular.resources``); the
``credentials`` feature signs and publishes with it. Key ids are RFC 7638 thumbprints,
so the same key has the same ``kid`` wherever it is loaded.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from consular.settings import ConsularSettings

ALGORITHM = "EdDSA"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(public: Ed25519PublicKey) -> dict[str, str]:
    """The key as a JWK (RFC 8037) with its thumbprint as ``kid``."""
    x = _b64(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    # RFC 7638: SHA-256 of the required members, sorted, no whitespace.
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    kid = _b64(hashlib.sha256(canonical.encode()).digest())
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": ALGORITHM, "use": "sig"}


@dataclass(frozen=True)
class KeyRing:
    """The signing key and every public key a verifier should accept."""

    signing: Ed25519PrivateKey
    previous: tuple[Ed25519PublicKey, ...] = ()

    @property
    def kid(self) -> str:
        return public_jwk(self.signing.public_key())["kid"]

    def jwks(self) -> dict[str, Any]:
        """The published key set: the current key first, then earlier ones (distinct)."""
        keys = [public_jwk(self.signing.public_key())]
        for public in self.previous:
            jwk = public_jwk(public)
            if all(k["kid"] != jwk["kid"] for k in keys):
                keys.append(jwk)
        return {"keys": keys}

    def sign(self, claims: dict[str, Any], *, typ: str = "JWT") -> str:
        """A JWS compact token of ``claims`` signed by the current key, naming its ``kid``."""
        return jwt.encode(
            claims, self.signing, algorithm=ALGORITHM, headers={"kid": self.kid, "typ": typ}
        )


class SigningKeyMissing(Exception):
    pass


def _private_key(pem: bytes, where: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{where}: the credential signing key must be an Ed25519 key")
    return key


def _public_key(pem: bytes, where: str) -> Ed25519PublicKey:
    if b"PRIVATE KEY" in pem:
        return _private_key(pem, where).public_key()
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{where}: a previous credential key must be an Ed25519 key")
    return key


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _create_key_file(path: Path) -> None:
    """Write a new key to ``path`` (mode 0600) unless another process did first: written
    aside, then linked into place, so no reader ever sees half a key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, aside = tempfile.mkstemp(dir=path.parent, prefix=".credential-key-")
    try:
        os.write(descriptor, private_pem(Ed25519PrivateKey.generate()))
        os.fchmod(descriptor, 0o600)
        os.close(descriptor)
        # Another process made it first: use theirs.
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
    finally:
        os.unlink(aside)


def load_key_ring(settings: ConsularSettings) -> KeyRing:
    """The key ring the settings name. Outside production a missing key file is created;
    in production a missing key refuses to start."""
    secret = settings.credential_signing_key
    if secret is not None:
        signing = _private_key(secret.get_secret_value().encode(), "CREDENTIAL_SIGNING_KEY")
    else:
        path = settings.credential_signing_key_file
        if not path.is_file():
            if settings.environment == "production":
                raise SigningKeyMissing(
                    f"no credential signing key at {path} (production never generates one)"
                )
            _create_key_file(path)
        signing = _private_key(path.read_bytes(), str(path))
    previous = tuple(
        _public_key(path.read_bytes(), str(path)) for path in settings.credential_previous_key_files
    )
    return KeyRing(signing=signing, previous=previous)
