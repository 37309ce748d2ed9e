"""The service starts on its own database: migrations, health, settings fail closed,
the processes' entry points and the audit log's protections."""

from __future__ import annotations

from importlib import metadata

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import text

from consular.resources import Consular
from consular.settings import ConsularSettings


def test_settings_refuse_to_start_without_an_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CONSULAR_ENVIRONMENT", raising=False)
    monkeypatch.setenv("CONSULAR_DATABASE_URL", "postgresql://consular@db/consular")
    with pytest.raises(ValidationError, match="CONSULAR_ENVIRONMENT is not set"):
        ConsularSettings()
    monkeypatch.setenv("CONSULAR_ENVIRONMENT", "development")
    assert ConsularSettings().http_port == 8104


def test_the_processes_and_the_documentation_entry_point_are_declared() -> None:
    scripts = {e.name: e.value for e in metadata.entry_points(group="console_scripts")}
    for process in ("migrate", "relay", "worker"):
        assert scripts[f"consular-{process}"] == f"consular.entrypoints.{process}:main"
    services = {e.name: e.value for e in metadata.entry_points(group="diaspora.services")}
    assert services["consular"] == "consular.entrypoints.docs"


@pytest.mark.integration
async def test_migrations_create_the_tables_and_the_api_is_ready(
    consular: Consular, http: httpx.AsyncClient
) -> None:
    async with consular.sessions() as session:
        tables = set(
            (
                await session.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            ).scalars()
        )
    assert {
        "outbox",
        "inbox",
        "audit_log",
        "audit_log_chain_head",
        "applicants",
        "removed_applicants",
        "service_types",
        "service_type_versions",
        "applications",
        "application_history",
    } <= tables
    live = await http.get("/health/live")
    assert live.status_code == 200
    ready = await http.get("/health/ready")
    assert ready.status_code == 200, ready.text
    # A bearer token is required everywhere but the public catalogue.
    refused = await http.get("/applications")
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")


@pytest.mark.integration
async def test_the_runtime_role_cannot_rewrite_the_audit_log(consular: Consular) -> None:
    async with consular.sessions() as session:
        with pytest.raises(Exception, match=r"permission denied|append-only"):
            async with session.begin():
                await session.execute(text("DELETE FROM audit_log"))
