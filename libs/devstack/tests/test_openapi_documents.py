"""The committed OpenAPI documents say what the services' HTTP interfaces do."""

from __future__ import annotations

from pathlib import Path

import pytest

from diaspora_devstack import openapi

ROOT = Path(__file__).resolve().parents[3]


def test_every_service_with_an_http_interface_is_documented() -> None:
    services = openapi.http_services()
    assert {"registry", "notifications", "matching"} <= set(services)
    committed = {p.stem for p in (ROOT / openapi.OPENAPI_DIR).glob("*.json")}
    assert committed == set(services)


# Regenerates whole documents (or runs a subprocess): seconds, not milliseconds.
@pytest.mark.slow
def test_committed_documents_are_in_step_with_the_code() -> None:
    diffs = openapi.stale(ROOT)
    assert diffs == [], (
        f"run `uv run python -m diaspora_devstack.openapi write` and commit:\n{''.join(diffs)}"
    )


# Regenerates whole documents (or runs a subprocess): seconds, not milliseconds.
@pytest.mark.slow
def test_a_drifted_document_is_reported(tmp_path: Path) -> None:
    assert openapi.write(tmp_path)  # everything is new in an empty tree
    assert openapi.stale(tmp_path) == []
    target = tmp_path / openapi.OPENAPI_DIR / "registry.json"
    target.write_text(target.read_text().replace('"openapi"', '"openapi-drifted"', 1))
    (stale,) = openapi.stale(tmp_path)
    assert "registry.json (committed)" in stale
