"""The service starts on its own database: migrations, health, settings fail closed,
the processes' entry points and the audit log's protections."""

from __future__ import annotations

from importlib import metadata

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import text

from returnees.resources import Returnees
from returnees.settings import ReturneesSettings


def test_settings_refuse_to_start_without_an_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RETURNEES_ENVIRONMENT", raising=False)
    monkeypatch.setenv("RETURNEES_DATABASE_URL", "postgresql://returnees@db/returnees")
    with pytest.raises(ValidationError, match="RETURNEES_ENVIRONMENT is not set"):
        ReturneesSettings()
    monkeypatch.setenv("RETURNEES_ENVIRONMENT", "development")
    assert ReturneesSettings().http_port == 8105


def test_the_processes_and_the_documentation_entry_point_are_declared() -> None:
    scripts = {e.name: e.value for e in metadata.entry_points(group="console_scripts")}
    for process in ("migrate", "relay", "worker"):
        assert scripts[f"returnees-{process}"] == f"returnees.entrypoints.{process}:main"
    services = {e.name: e.value for e in metadata.entry_points(group="diaspora.services")}
    assert services["returnees"] == "returnees.entrypoints.docs"


@pytest.mark.integration
async def test_migrations_create_the_tables_and_the_api_is_ready(
    returnees: Returnees, http: httpx.AsyncClient
) -> None:
    async with returnees.sessions() as session:
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
        "people",
        "removed_people",
    } <= tables
    live = await http.get("/health/live")
    assert live.status_code == 200
    ready = await http.get("/health/ready")
    assert ready.status_code == 200, ready.text


@pytest.mark.integration
async def test_the_runtime_role_cannot_rewrite_the_audit_log(returnees: Returnees) -> None:
    async with returnees.sessions() as session:
        with pytest.raises(Exception, match=r"permission denied|append-only"):
            async with session.begin():
                await session.execute(text("DELETE FROM audit_log"))
