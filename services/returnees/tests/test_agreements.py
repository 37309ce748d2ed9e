"""The agreements register on the real PostgreSQL: recorded by the ministry, moved
through its stages with history, 409 naming the stages allowed, read by analysts and
the return cell, refused to citizens, bad bodies 422 problems."""

from __future__ import annotations

import httpx
import pytest

from diaspora_identity.testing import LocalIssuer, analyst, case_worker, citizen, coordinator

pytestmark = pytest.mark.integration


async def test_an_agreement_moves_through_its_stages_with_history(
    http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    ministry = identity_provider.headers(coordinator("coord-mawuli"))
    created = await http.post(
        "/agreements",
        headers=ministry,
        json={
            "country": "QA",
            "title": "Accord Togo-Qatar sur la main-d'oeuvre",
            "sectors": ["construction", "hospitality"],
            "quotas": [{"occupation": "7112", "per_year": 500}],
            "documents": [{"title": "Lettre d'intention", "dated_on": "2026-10-01"}],
        },
    )
    assert created.status_code == 201, created.text
    agreement = created.json()
    assert (agreement["stage"], agreement["allowed_stages"]) == (
        "identified",
        ["negotiating", "abandoned"],
    )
    url = f"/agreements/{agreement['id']}/stage"
    skipped = await http.post(url, headers=ministry, json={"stage": "in_force"})
    assert skipped.status_code == 409, skipped.text
    assert skipped.headers["content-type"].startswith("application/problem+json")
    assert skipped.json()["allowed"] == ["negotiating", "abandoned"]
    for stage, on in (("negotiating", None), ("signed", "2027-01-20"), ("in_force", None)):
        moved = await http.post(
            url, headers=ministry, json={"stage": stage, "on": on, "note": f"vers {stage}"}
        )
        assert moved.status_code == 200, moved.text
    final = moved.json()
    assert final["signed_on"] == "2027-01-20"
    assert final["in_force_on"] is not None
    assert [(h["from_stage"], h["to_stage"]) for h in final["history"]] == [
        (None, "identified"),
        ("identified", "negotiating"),
        ("negotiating", "signed"),
        ("signed", "in_force"),
    ]
    assert {h["by_subject"] for h in final["history"]} == {"coord-mawuli"}

    for reader in (analyst(), case_worker()):
        seen = await http.get("/agreements?country=QA", headers=identity_provider.headers(reader))
        assert seen.status_code == 200
        assert [a["id"] for a in seen.json()["items"]] == [agreement["id"]]
    # Readers do not write; citizens do not read the working register.
    refused = await http.post(
        url, headers=identity_provider.headers(analyst()), json={"stage": "suspended"}
    )
    assert refused.status_code == 403
    hidden = await http.get("/agreements", headers=identity_provider.headers(citizen()))
    assert hidden.status_code == 403


async def test_bad_agreement_bodies_are_422_problems(
    http: httpx.AsyncClient, identity_provider: LocalIssuer
) -> None:
    ministry = identity_provider.headers(coordinator())
    for body in (
        {"country": "Qatar", "title": "x"},
        {"country": "QA", "title": ""},
        {"country": "QA", "title": "x", "stage": "dreamt"},
        {"country": "QA", "title": "x", "quotas": [{"occupation": "7112", "per_year": -1}]},
        {"country": "QA", "title": "line\nbreak"},
    ):
        answer = await http.post("/agreements", headers=ministry, json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
