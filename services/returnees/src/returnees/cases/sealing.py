"""The sensitive fields of a case (health, psychosocial, vulnerabilities) sealed at rest
with the returnee's own data key: the per-person key the registry keeps for
crypto-shredding (docs/architecture.md), fetched from its key service like the keys that
seal events. Erasing the person destroys that key, so every copy of these fields (rows,
backups) stops opening at once. AES-256-GCM; the associated data binds the ciphertext to
the case and the person, so it does not open when moved to another row."""

from __future__ import annotations

import json
import os
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from diaspora_events.shredding import DataKeySource
from returnees.cases.domain import Sensitive

NONCE_BYTES = 12


class KeyGone(Exception):
    """The person was erased: their key is destroyed, the sealed fields no longer open."""


def _aad(case_id: UUID, subject: UUID) -> bytes:
    return f"returnees/case-sensitive/{case_id}/{subject}".encode()


async def _key(keys: DataKeySource, subject: UUID) -> bytes:
    key = (await keys.data_keys([subject])).get(subject)
    if key is None:
        raise KeyGone(str(subject))
    return key


async def seal(keys: DataKeySource, case_id: UUID, subject: UUID, data: Sensitive) -> bytes:
    plaintext = json.dumps(data.as_dict(), separators=(",", ":"), ensure_ascii=False).encode()
    nonce = os.urandom(NONCE_BYTES)
    key = await _key(keys, subject)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, _aad(case_id, subject))


async def open_sealed(
    keys: DataKeySource, case_id: UUID, subject: UUID, sealed: bytes
) -> Sensitive:
    key = await _key(keys, subject)
    try:
        plaintext = AESGCM(key).decrypt(
            sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _aad(case_id, subject)
        )
    except InvalidTag:
        raise KeyGone(str(subject)) from None
    data = json.loads(plaintext)
    assert isinstance(data, dict)
    return Sensitive.of(data)
