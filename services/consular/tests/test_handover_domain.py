"""The hand-over package in plain Python: the answers' order, and a package listing
documents with their signed, expiring download references, in the documented format."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consular.handover import domain
from consular.signing_keys import KeyRing

SCHEMA = Path(__file__).parents[3] / "docs" / "schemas" / "consular-handover-package.schema.json"
# Long past: the download reference signed then has expired by now.
NOW = datetime(2025, 1, 6, 10, 0, tzinfo=UTC)


def test_answers_come_in_order_and_a_repeat_changes_nothing() -> None:
    def check(status: str, answer: str, **kw: str | None) -> bool:
        values: dict[str, str | None] = {
            "reason": None,
            "document_number": None,
            "kept_reason": None,
            "kept_number": None,
            **kw,
        }
        return domain.check_answer(status, answer, **values)  # type: ignore[arg-type]

    assert check("sent", "accepted")
    assert check("sent", "rejected", reason="x")
    assert check("accepted", "produced", document_number="P1")
    assert not check("accepted", "accepted")
    assert not check("produced", "produced", document_number="P1", kept_number="P1")
    with pytest.raises(domain.AnswerOutOfOrder) as early:
        check("sent", "produced", document_number="P1")
    assert early.value.allowed == ["accepted", "rejected"]
    with pytest.raises(domain.AnswerOutOfOrder) as other:
        check("produced", "produced", document_number="P2", kept_number="P1")
    assert other.value.allowed == []
    with pytest.raises(domain.AnswerOutOfOrder):
        check("rejected", "accepted")


def test_a_package_with_documents_verifies_and_fits_the_schema() -> None:
    keys = KeyRing(Ed25519PrivateKey.generate())
    handover_id = uuid.uuid4()
    ref = domain.DocumentRef(uuid.uuid4(), "photo", "image/jpeg", 48_213, "ab" * 32)
    claims = domain.download_claims(
        issuer="https://diaspora.gouv.tg/consular",
        audience=domain.AUTHORITY_CLIENT,
        handover_id=handover_id,
        document=ref,
        now=NOW,
        lifetime=domain.DOWNLOAD_LIFETIME,
    )
    reference = keys.sign(claims, typ=domain.DOWNLOAD_TYP)
    application = {
        "id": uuid.uuid4(),
        "reference": "PP-2026-0000000000",
        "service_type": "passport_preparation",
        "catalogue_version": 1,
        "embassy_id": "fr-paris",
        "submitted_at": NOW - timedelta(days=3),
        "decided_at": NOW,
        "answers": {"request_kind": "first", "height_cm": 172},
        "applicant_id": uuid.uuid4(),
    }
    document = domain.package_document(
        handover_id=handover_id,
        issuer="https://diaspora.gouv.tg/consular",
        audience=domain.AUTHORITY_CLIENT,
        now=NOW,
        application=application,
        applicant=None,
        required_documents=["photo"],
        documents=[(ref, reference, NOW + domain.DOWNLOAD_LIFETIME)],
        answer_path=f"/handovers/{handover_id}/answers",
    )
    package = keys.sign(document, typ=domain.PACKAGE_TYP)
    found = domain.verify_package(package, keys.jwks(), audience=domain.AUTHORITY_CLIENT)
    jsonschema.validate(found, json.loads(SCHEMA.read_text(encoding="utf-8")))
    download = found["documents"][0]
    assert (download["sha256"], download["kind"]) == (ref.sha256, "photo")
    # The download reference: same key, names the document and its digest, expires.
    key = jwt.PyJWK.from_dict(keys.jwks()["keys"][0], algorithm="EdDSA")
    opened = jwt.decode(
        download["download"]["reference"],
        key.key,
        algorithms=["EdDSA"],
        audience=domain.AUTHORITY_CLIENT,
        options={"verify_exp": False},
    )
    assert (opened["sub"], opened["sha256"], opened["handover_id"]) == (
        str(ref.id),
        ref.sha256,
        str(handover_id),
    )
    assert opened["exp"] - opened["iat"] == int(domain.DOWNLOAD_LIFETIME.total_seconds())
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(
            download["download"]["reference"],
            key.key,
            algorithms=["EdDSA"],
            audience=domain.AUTHORITY_CLIENT,
        )
