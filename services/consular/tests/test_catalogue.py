"""The service catalogue: public read of the six seeded types, versioned edits by the
ministry (If-Match, audited), earlier versions kept."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from consular.resources import Consular
from consular.tables import audit_log
from diaspora_identity.testing import LocalIssuer, citizen, coordinator, officer

pytestmark = pytest.mark.integration

SEEDED = {
    "consular_card": "verified_identity_in_jurisdiction",
    "laissez_passer": "verified_identity_in_jurisdiction",
    "passport_preparation": "registered_member",
    "national_id_preparation": "registered_member",
    "civil_status_transcription": "registered_member",
    "e_visa": "none",
}


async def test_the_six_seeded_types_are_public_with_french_and_english_labels(
    http: httpx.AsyncClient,
) -> None:
    answer = await http.get("/catalogue/service-types")
    assert answer.status_code == 200, answer.text
    items = {item["code"]: item for item in answer.json()["items"]}
    assert {code: item["eligibility"] for code, item in items.items()} == SEEDED
    card = items["consular_card"]
    assert card["labels"] == {"fr": "Carte consulaire", "en": "Consular card"}
    assert card["version"] == card["current_version"] == 1
    assert card["fee"] == {"amount": "10000.00", "currency": "XOF"}
    assert card["processing"] == {"rule": "applicant_embassy", "embassy_id": None}
    assert card["target_processing_days"] == 15
    assert {d["code"] for d in card["required_documents"]} >= {"identity_document", "photo"}
    for item in items.values():
        assert item["form_fields"], item["code"]
        for field in item["form_fields"]:
            assert field["labels"]["fr"]
            assert field["labels"]["en"]
    one = await http.get("/catalogue/service-types/e_visa")
    assert one.status_code == 200
    assert one.headers["etag"] == '"1"'
    assert one.json()["processing"] == {"rule": "fixed_embassy", "embassy_id": "tg-lome"}
    missing = await http.get("/catalogue/service-types/no_such_type")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


def _edited(definition: dict[str, Any]) -> dict[str, Any]:
    body = {
        k: v
        for k, v in definition.items()
        if k not in ("code", "version", "current_version", "version_id", "published_at")
    }
    body["fee"] = {"amount": "12000.00", "currency": "XOF"}
    body["target_processing_days"] = 10
    return body


async def test_an_edit_by_the_ministry_is_a_new_audited_version_and_the_old_one_stays(
    consular: Consular, http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    current = (await http.get("/catalogue/service-types/consular_card")).json()
    body = _edited(current)
    # Citizens and officers may read, not edit (403); no token: 401.
    for persona in (citizen(), officer("fr-paris")):
        refused = await http.put(
            "/catalogue/service-types/consular_card",
            json=body,
            headers=identity_provider.headers(persona),
        )
        assert refused.status_code == 403, refused.text
    assert (await http.put("/catalogue/service-types/consular_card", json=body)).status_code == 401

    minister = coordinator()
    headers = {**identity_provider.headers(minister), "If-Match": '"1"'}
    edited = await http.put("/catalogue/service-types/consular_card", json=body, headers=headers)
    assert edited.status_code == 200, edited.text
    assert edited.headers["etag"] == '"2"'
    assert edited.json()["version"] == 2
    assert edited.json()["fee"]["amount"] == "12000.00"

    # Edited from version 1 again: someone else's edit came in between (412, current ETag).
    stale = await http.put("/catalogue/service-types/consular_card", json=body, headers=headers)
    assert stale.status_code == 412
    assert stale.headers["etag"] == '"2"'

    old = await http.get("/catalogue/service-types/consular_card", params={"version": 1})
    assert old.json()["fee"]["amount"] == "10000.00"
    assert old.json()["current_version"] == 2
    now = await http.get("/catalogue/service-types/consular_card")
    assert now.json()["target_processing_days"] == 10

    # A malformed definition: 422 problem details naming the field.
    broken = {**body, "eligibility": "anyone"}
    bad = await http.put(
        "/catalogue/service-types/consular_card",
        json=broken,
        headers=identity_provider.headers(minister),
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert any(e["field"] == "eligibility" for e in bad.json()["errors"])

    async with consular.sessions() as session:
        entries = (
            (
                await session.execute(
                    select(audit_log).where(audit_log.c.actor_subject == minister.subject)
                )
            )
            .mappings()
            .all()
        )
    assert [(e["resource"], e["action"], str(e["record_id"])) for e in entries] == [
        ("consular_service_type", "update", edited.json()["version_id"])
    ]
