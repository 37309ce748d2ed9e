"""Encryption of document numbers: AES-GCM with key ids, rotation, refusals (no database)."""

from __future__ import annotations

import base64
import os
from uuid import uuid4

import pytest
from pydantic import ValidationError

from registry.crypto import (
    DEVELOPMENT_KEYS,
    DocumentCipher,
    InvalidDocumentKeys,
    Sealed,
    UndecryptableDocument,
    generate_key,
    parse_keys,
)
from registry.settings import RegistrySettings

PRODUCTION_DB = "postgresql://registry:s3cret@db.internal:5432/registry"
PRODUCTION_ISSUER = "https://id.diaspora.gouv.tg/realms/diaspora"
# Production refuses Kafka without TLS and a principal (docs/security.md).
PRODUCTION_KAFKA = {
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_username": "registry",
    "kafka_sasl_password": "s3cret",
}


def test_numbers_round_trip_and_never_appear_in_the_ciphertext() -> None:
    cipher = DocumentCipher(parse_keys(f"k1:{generate_key()}"), "k1")
    member = uuid4()
    sealed = cipher.seal("TG1234567", member_id=member, kind="passport")
    assert sealed.key_id == "k1"
    assert b"TG1234567" not in sealed.ciphertext
    assert cipher.open(sealed, member_id=member, kind="passport") == "TG1234567"
    # A fresh nonce each time: the same number never gives the same bytes.
    assert cipher.seal("TG1234567", member_id=member, kind="passport") != sealed


def test_a_ciphertext_moved_to_another_row_or_tampered_with_does_not_decrypt() -> None:
    cipher = DocumentCipher(parse_keys(f"k1:{generate_key()}"), "k1")
    member = uuid4()
    sealed = cipher.seal("TG1234567", member_id=member, kind="passport")
    with pytest.raises(UndecryptableDocument):
        cipher.open(sealed, member_id=uuid4(), kind="passport")
    with pytest.raises(UndecryptableDocument):
        cipher.open(sealed, member_id=member, kind="national_id_card")
    flipped = bytearray(sealed.ciphertext)
    flipped[-1] ^= 1
    with pytest.raises(UndecryptableDocument):
        cipher.open(Sealed("k1", bytes(flipped)), member_id=member, kind="passport")
    with pytest.raises(UndecryptableDocument):
        cipher.open(Sealed("gone", sealed.ciphertext), member_id=member, kind="passport")


def test_rotation_keeps_old_numbers_readable_and_seals_new_ones_with_the_active_key() -> None:
    old_key, new_key = generate_key(), generate_key()
    member = uuid4()
    before = DocumentCipher(parse_keys(f"k1:{old_key}"), "k1")
    sealed = before.seal("A0000001", member_id=member, kind="passport")
    after = DocumentCipher(parse_keys(f"k2:{new_key},k1:{old_key}"), "k2")
    assert after.open(sealed, member_id=member, kind="passport") == "A0000001"
    assert after.seal("A0000001", member_id=member, kind="passport").key_id == "k2"
    only_new = DocumentCipher(parse_keys(f"k2:{new_key}"), "k2")
    with pytest.raises(UndecryptableDocument):
        only_new.open(sealed, member_id=member, kind="passport")


@pytest.mark.parametrize(
    "keys",
    [
        "",
        "k1",
        ":" + generate_key(),
        "k1:not-base64!!",
        "k1:" + base64.b64encode(os.urandom(16)).decode(),  # AES-128: refused
        f"k1:{generate_key()},k1:{generate_key()}",
    ],
    # Stable ids: the keys are random, and parallel test processes must collect the
    # same tests.
    ids=["empty", "no-key", "no-id", "not-base64", "aes-128", "duplicate-id"],
)
def test_bad_key_configurations_are_refused(keys: str) -> None:
    with pytest.raises(InvalidDocumentKeys):
        parse_keys(keys)


def test_settings_check_the_keys_and_production_refuses_the_development_key() -> None:
    key = generate_key()
    with pytest.raises(ValidationError, match="REGISTRY_DOCUMENT_KEY_ID"):
        RegistrySettings(
            database_url="postgresql://x", document_keys=f"k1:{key}", environment="test"
        )
    with pytest.raises(ValidationError, match="development document key"):
        RegistrySettings(
            database_url=PRODUCTION_DB,
            oidc_issuer=PRODUCTION_ISSUER,
            environment="production",
            **PRODUCTION_KAFKA,
        )
    # The development key under another id is still the development key.
    development = DEVELOPMENT_KEYS.split(":", 1)[1]
    with pytest.raises(ValidationError, match="development document key"):
        RegistrySettings(
            database_url=PRODUCTION_DB,
            oidc_issuer=PRODUCTION_ISSUER,
            environment="production",
            **PRODUCTION_KAFKA,
            document_keys=f"prod:{development}",
            document_key_id="prod",
        )
    production = RegistrySettings(
        database_url=PRODUCTION_DB,
        oidc_issuer=PRODUCTION_ISSUER,
        environment="production",
        **PRODUCTION_KAFKA,
        document_keys=f"2026-11:{key}",
        document_key_id="2026-11",
    )
    assert production.document_key_id == "2026-11"
