"""Issued credentials without a database: a genuine token verifies with nothing but the
published JWKS (JSON) and the token; a tampered payload, another key, an unknown key, a
revoked or an expired credential do not pass; the QR code printed on the PDF reads back
as the token; the signing key's life (development file, production refusal, rotation)."""

from __future__ import annotations

import base64
import json
import os
import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import jwt
import pypdfium2
import pytest
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consular.bootstrap import bootstrap
from consular.credentials import domain
from consular.credentials.document import PrintedCredential, qr_payload, render_pdf
from consular.settings import ConsularSettings
from consular.signing_keys import KeyRing, SigningKeyMissing, load_key_ring, private_pem, public_pem
from diaspora_documents.settings import S3Settings, StoreSettings

ISSUER = "https://diaspora.gouv.tg/consular"
NOW = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)


def card_claims(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "credential_id": uuid4(),
        "credential_type": "consular_card",
        "issuer": ISSUER,
        "holder": domain.Holder("Akossiwa", "Mensah", date(1990, 4, 27)),
        "embassy_id": "fr-paris",
        "reference": "CC-2026-3F9A1C07B2",
        "issued_at": NOW,
        "expires_at": NOW + timedelta(days=5 * 365),
        **overrides,
    }
    return domain.claims(**values)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_a_genuine_token_verifies_with_nothing_but_the_published_jwks() -> None:
    ring = KeyRing(Ed25519PrivateKey.generate())
    token = ring.sign(card_claims())
    published = json.dumps(ring.jwks())  # what GET /credentials/jwks.json serves

    # A verifier that knows only the JWKS JSON and the token, with a stock JOSE library.
    key_set = jwt.PyJWKSet.from_json(published)
    kid = jwt.get_unverified_header(token)["kid"]
    claims = jwt.decode(token, key_set[kid].key, algorithms=["EdDSA"], issuer=ISSUER)
    assert claims["holder"] == {
        "given_name": "Akossiwa",
        "family_name": "Mensah",
        "date_of_birth": "1990-04-27",
    }
    assert claims["credential_type"] == "consular_card"
    assert claims["issuing_embassy"] == "fr-paris"

    # And the service's own offline verifier, from the same JSON.
    verdict = domain.verify(token, json.loads(published), now=NOW, issuer=ISSUER)
    assert verdict.status == "valid", verdict.reason
    assert verdict.kid == kid


def test_a_tampered_payload_is_forged() -> None:
    ring = KeyRing(Ed25519PrivateKey.generate())
    token = ring.sign(card_claims())
    header, payload, signature = token.split(".")
    claims = json.loads(unb64(payload))
    claims["holder"]["family_name"] = "Lawson"
    claims["exp"] += 10 * 365 * 86400
    tampered = ".".join([header, b64(json.dumps(claims).encode()), signature])

    verdict = domain.verify(tampered, ring.jwks(), now=NOW)
    assert verdict.status == "forged"
    assert "bad signature" in verdict.reason
    assert verdict.claims is None
    # A flipped bit in the signature too.
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert domain.verify(flipped, ring.jwks(), now=NOW).status == "forged"


def test_a_token_signed_by_another_key_is_forged_whatever_kid_it_names() -> None:
    ministry = KeyRing(Ed25519PrivateKey.generate())
    forger = Ed25519PrivateKey.generate()
    claims = card_claims()

    # Its own kid: not a published key.
    own = KeyRing(forger).sign(claims)
    verdict = domain.verify(own, ministry.jwks(), now=NOW)
    assert (verdict.status, verdict.reason) == (
        "forged",
        "signed by a key the ministry does not publish",
    )
    # The ministry's kid in the header: the signature does not hold.
    borrowed = jwt.encode(claims, forger, algorithm="EdDSA", headers={"kid": ministry.kid})
    verdict = domain.verify(borrowed, ministry.jwks(), now=NOW)
    assert verdict.status == "forged"
    assert "bad signature" in verdict.reason
    # No signature, or a shared-secret one made with the public key's bytes.
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": ministry.kid})
    assert domain.verify(unsigned, ministry.jwks(), now=NOW).status == "forged"
    x = ministry.jwks()["keys"][0]["x"]
    hmac = jwt.encode(claims, x, algorithm="HS256", headers={"kid": ministry.kid})
    assert domain.verify(hmac, ministry.jwks(), now=NOW).status == "forged"
    assert domain.verify("not.a.token", ministry.jwks(), now=NOW).status == "forged"


def test_revoked_and_expired_credentials_do_not_pass() -> None:
    ring = KeyRing(Ed25519PrivateKey.generate())
    credential_id = uuid4()
    token = ring.sign(card_claims(credential_id=credential_id))

    revoked = domain.verify(token, ring.jwks(), revoked={str(credential_id)}, now=NOW)
    assert revoked.status == "revoked"
    assert revoked.claims is not None
    assert revoked.claims["jti"] == str(credential_id)
    assert domain.verify(token, ring.jwks(), revoked={str(uuid4())}, now=NOW).status == "valid"

    later = NOW + timedelta(days=5 * 365 + 1)
    assert domain.verify(token, ring.jwks(), now=later).status == "expired"
    # Another issuer's token (even signed by a published key) is not the ministry's.
    assert domain.verify(token, ring.jwks(), now=NOW, issuer="https://else").status == "forged"


def test_after_a_rotation_both_keys_are_published_and_only_the_new_one_signs() -> None:
    old = Ed25519PrivateKey.generate()
    before = KeyRing(old)
    issued_before = before.sign(card_claims())

    after = KeyRing(Ed25519PrivateKey.generate(), previous=(old.public_key(),))
    assert [k["kid"] for k in after.jwks()["keys"]] == [after.kid, before.kid]
    issued_after = after.sign(card_claims())
    assert jwt.get_unverified_header(issued_after)["kid"] == after.kid
    for token in (issued_before, issued_after):
        assert domain.verify(token, after.jwks(), now=NOW).status == "valid"
    # Once the old key is withdrawn from the JWKS, what it signed no longer verifies.
    assert domain.verify(issued_before, KeyRing(after.signing).jwks(), now=NOW).status == "forged"


def printed(token: str, **overrides: Any) -> PrintedCredential:
    values: dict[str, Any] = {
        "credential_id": str(uuid4()),
        "credential_type": "consular_card",
        "holder": domain.Holder("Akossiwa", "Mensah", date(1990, 4, 27)),
        "embassy_id": "fr-paris",
        "reference": "CC-2026-3F9A1C07B2",
        "issued_at": NOW,
        "expires_at": NOW + timedelta(days=5 * 365),
        "token": token,
        **overrides,
    }
    return PrintedCredential(**values)


def read_qr_codes(pdf: bytes) -> list[str]:
    """Render the PDF's first page at 200 dpi, as a phone's camera would see the print,
    and decode every QR code on it."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        image = document[0].render(scale=200 / 72).to_pil()
    finally:
        document.close()
    return [code.text for code in zxingcpp.read_barcodes(image)]


def test_the_qr_code_on_the_printed_pdf_reads_back_as_the_token() -> None:
    ring = KeyRing(Ed25519PrivateKey.generate())
    token = ring.sign(card_claims())
    credential = printed(token)
    assert qr_payload(credential) == token

    pdf = render_pdf(credential)
    assert pdf.startswith(b"%PDF-")
    assert read_qr_codes(pdf) == [token]
    assert domain.verify(read_qr_codes(pdf)[0], ring.jwks(), now=NOW).status == "valid"


def test_an_e_visa_pdf_prints_names_beyond_latin_1_and_its_qr_keeps_them_exact() -> None:
    ring = KeyRing(Ed25519PrivateKey.generate())
    holder = domain.Holder("Ŭrsula", "Kɔffi", date(1992, 6, 30), "X1234567", "DE")
    claims = card_claims(credential_type="e_visa", holder=holder, reference="EV-2026-0A1B2C3D4E")
    token = ring.sign(claims)
    pdf = render_pdf(printed(token, credential_type="e_visa", holder=holder))
    (read,) = read_qr_codes(pdf)
    verdict = domain.verify(read, ring.jwks(), now=NOW)
    assert verdict.status == "valid"
    assert verdict.claims is not None
    assert verdict.claims["holder"]["family_name"] == "Kɔffi"
    assert verdict.claims["holder"]["passport_number"] == "X1234567"


def settings(**values: Any) -> ConsularSettings:
    base: dict[str, Any] = {
        "environment": "development",
        "database_url": "postgresql://consular@db.example:5432/consular",
    }
    return ConsularSettings(**{**base, **values})


def test_development_creates_a_private_key_file_once_and_reuses_it(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "credential.pem"
    first = load_key_ring(settings(credential_signing_key_file=path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    second = load_key_ring(settings(credential_signing_key_file=path))
    assert first.kid == second.kid
    assert [p.name for p in path.parent.iterdir()] == ["credential.pem"]


def test_production_refuses_to_start_without_a_signing_key(tmp_path: Path) -> None:
    production: dict[str, Any] = {
        "environment": "production",
        "database_url": "postgresql://consular:secret@db.example:5432/consular",
        "oidc_issuer": "https://idp.example/realms/diaspora",
        "kafka_security_protocol": "SASL_SSL",
        # Production keeps documents in S3 (a local folder is refused: test_documents.py).
        "documents": StoreSettings(
            backend="s3", s3=S3Settings(endpoint_url="https://s3.example", bucket="consular-docs")
        ),
    }
    missing = tmp_path / "absent.pem"
    settings = ConsularSettings(**production, credential_signing_key_file=missing)
    with pytest.raises(SigningKeyMissing, match="production never generates one"):
        load_key_ring(settings)
    # The API's bootstrap is what loads it: the service does not start.
    with pytest.raises(SigningKeyMissing):
        bootstrap(settings)
    assert not missing.exists()
    # The relay and the worker never hold the key (nor need one).
    assert bootstrap(settings, signing=False).credential_keys is None

    key = Ed25519PrivateKey.generate()
    from_secret = ConsularSettings(
        **production,
        credential_signing_key_file=missing,
        credential_signing_key=private_pem(key).decode(),
    )
    ring = load_key_ring(from_secret)
    assert ring.kid == KeyRing(key).kid
    assert not missing.exists()


def test_previous_keys_come_from_pem_files_in_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    current, older, oldest = (Ed25519PrivateKey.generate() for _ in range(3))
    (tmp_path / "current.pem").write_bytes(private_pem(current))
    (tmp_path / "older.pem").write_bytes(public_pem(older.public_key()))
    (tmp_path / "oldest.pem").write_bytes(private_pem(oldest))
    monkeypatch.setenv("CONSULAR_ENVIRONMENT", "development")
    monkeypatch.setenv("CONSULAR_DATABASE_URL", "postgresql://consular@db.example/consular")
    monkeypatch.setenv("CONSULAR_CREDENTIAL_SIGNING_KEY_FILE", str(tmp_path / "current.pem"))
    monkeypatch.setenv(
        "CONSULAR_CREDENTIAL_PREVIOUS_KEY_FILES",
        f"{tmp_path / 'older.pem'}, {tmp_path / 'oldest.pem'}",
    )
    ring = load_key_ring(ConsularSettings())  # type: ignore[call-arg]
    assert [k["kid"] for k in ring.jwks()["keys"]] == [
        KeyRing(current).kid,
        KeyRing(older).kid,
        KeyRing(oldest).kid,
    ]


def test_the_verification_page_escapes_what_a_token_says() -> None:
    from consular.credentials.http import _result_html
    from consular.credentials.schemas import Verification

    page = _result_html(
        Verification(
            status="valid",
            reason="genuine",
            holder={"given_name": "<script>alert(1)</script>", "family_name": "O'Neil&Co"},
            issuing_embassy='fr-paris"><img src=x>',
        )
    )
    assert "<script>" not in page
    assert "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; O&#x27;Neil&amp;Co" in page
