"""The service starts on its own database: migrations, health, token required."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from matching.resources import Matching

pytestmark = pytest.mark.integration


async def test_migrations_create_the_tables_and_the_api_is_ready(
    matching: Matching, anonymous: httpx.AsyncClient
) -> None:
    async with matching.sessions() as session:
        tables = set(
            (
                await session.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            ).scalars()
        )
    assert {"needs", "experts", "expert_sources", "outbox", "inbox", "audit_log"} <= tables
    live = await anonymous.get("/health/live")
    assert live.status_code == 200
    ready = await anonymous.get("/health/ready")
    assert ready.status_code == 200, ready.text
