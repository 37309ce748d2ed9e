"""Encryption at rest of nationality document numbers (passport, national ID card...).

AES-256-GCM (``cryptography``), one random 96-bit nonce per value. Each
ciphertext is stored with the id of the key that made it, so keys rotate
without a flag day: new values use the active key, old ones stay readable with
the retired keys still configured, and ``registry-rekey`` re-encrypts them
under the active key (docs/runbooks/rotate-keys.md). The member id and the
document kind are bound to the ciphertext as associated data: a ciphertext
copied onto another member's row (or another kind) does not decrypt.

Keys come from the settings (``REGISTRY_DOCUMENT_KEYS``: ``id:base64,...``,
``REGISTRY_DOCUMENT_KEY_ID``: the active one). The development key below is
public (it is in this file) and production mode refuses it.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
KEY_BYTES = 32
# Known to everyone who reads this repository: development and tests only.
DEVELOPMENT_KEY_ID = "dev-1"
DEVELOPMENT_KEY = base64.b64encode(b"registry-development-key-0000000").decode("ascii")
DEVELOPMENT_KEYS = f"{DEVELOPMENT_KEY_ID}:{DEVELOPMENT_KEY}"


class InvalidDocumentKeys(ValueError):
    """The key configuration is unusable (bad encoding, wrong length, unknown active id)."""


class UndecryptableDocument(Exception):
    """A stored number does not decrypt: unknown key id, or the ciphertext was tampered
    with or moved to another row."""


def parse_keys(text: str) -> dict[str, bytes]:
    """``"k2:BASE64,k1:BASE64"`` -> {key id: 32-byte key}."""
    keys: dict[str, bytes] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key_id, sep, encoded = item.partition(":")
        key_id = key_id.strip()
        if not sep or not key_id:
            raise InvalidDocumentKeys("each document key is written id:base64")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidDocumentKeys(f"document key {key_id!r} is not valid base64") from None
        if len(key) != KEY_BYTES:
            raise InvalidDocumentKeys(
                f"document key {key_id!r} must be {KEY_BYTES} bytes (AES-256)"
            )
        if key_id in keys:
            raise InvalidDocumentKeys(f"document key id {key_id!r} appears twice")
        keys[key_id] = key
    if not keys:
        raise InvalidDocumentKeys("no document key configured")
    return keys


def generate_key() -> str:
    """A new random key, base64 (what an operator puts in REGISTRY_DOCUMENT_KEYS)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def is_development_key(keys: Mapping[str, bytes]) -> bool:
    development = base64.b64decode(DEVELOPMENT_KEY)
    return DEVELOPMENT_KEY_ID in keys or development in keys.values()


@dataclass(frozen=True)
class Sealed:
    key_id: str
    ciphertext: bytes  # nonce || AES-GCM ciphertext and tag


class DocumentCipher:
    """Encrypts and decrypts document numbers with the configured keys."""

    def __init__(self, keys: Mapping[str, bytes], active_key_id: str) -> None:
        if active_key_id not in keys:
            raise InvalidDocumentKeys(
                f"the active document key {active_key_id!r} is not configured"
            )
        self._keys = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.active_key_id = active_key_id

    @classmethod
    def from_settings(cls, keys: str, active_key_id: str) -> DocumentCipher:
        return cls(parse_keys(keys), active_key_id)

    @staticmethod
    def _aad(member_id: UUID, kind: str) -> bytes:
        return f"registry/member-document/{member_id}/{kind}".encode()

    def seal(self, plaintext: str, *, member_id: UUID, kind: str) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        aead = self._keys[self.active_key_id]
        body = aead.encrypt(nonce, plaintext.encode("utf-8"), self._aad(member_id, kind))
        return Sealed(self.active_key_id, nonce + body)

    def open(self, sealed: Sealed, *, member_id: UUID, kind: str) -> str:
        aead = self._keys.get(sealed.key_id)
        if aead is None:
            raise UndecryptableDocument(f"no key {sealed.key_id!r} configured")
        nonce, body = sealed.ciphertext[:NONCE_BYTES], sealed.ciphertext[NONCE_BYTES:]
        try:
            return aead.decrypt(nonce, body, self._aad(member_id, kind)).decode("utf-8")
        except InvalidTag:
            raise UndecryptableDocument("document number does not decrypt") from None
