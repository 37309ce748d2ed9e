"""Notifications' audit trail has the registry's integrity (issue 15): template previews
and delivery-log reads are chained entries that `diaspora-ops audit-verify` checks, and
the service's runtime role can only add them."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from notifications_testing import add_recipient

from diaspora_devstack.testing import app_url
from diaspora_identity.testing import LocalIssuer, admin, officer
from diaspora_service.ops import audit_verify
from notifications.resources import Notifications

pytestmark = pytest.mark.integration


async def test_audit_entries_are_chained_and_the_runtime_role_cannot_alter_them(
    client: httpx.AsyncClient,
    api_service: Notifications,
    notifications_database: str,
    identity_provider: LocalIssuer,
) -> None:
    preview = await client.post(
        "/templates/member_welcome/fr/preview",
        json={},
        headers=identity_provider.headers(admin()),
    )
    assert preview.status_code == 200
    member = await add_recipient(api_service, email="kossi@example.org", country="FR")
    log = await client.get(
        f"/recipients/{member}/deliveries",
        headers=identity_provider.headers(officer("fr-paris")),
    )
    assert log.status_code == 200

    runtime = await asyncpg.connect(app_url(notifications_database, "notifications"))
    try:
        rows = await runtime.fetch("SELECT resource, chain_seq FROM audit_log ORDER BY chain_seq")
        assert [r["chain_seq"] for r in rows] == list(range(1, len(rows) + 1))
        assert {r["resource"] for r in rows} >= {"notification_template", "delivery"}
        assert len(rows) >= 2
        for statement in (
            "UPDATE audit_log SET fields = '{}'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_chain",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await runtime.execute(statement)
    finally:
        await runtime.close()

    report = await audit_verify(notifications_database)
    assert report.ok, report.broken
    assert report.entries == len(rows)

    owner = await asyncpg.connect(notifications_database)
    try:
        await owner.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete")
        await owner.execute("UPDATE audit_log SET fields = '{}' WHERE chain_seq = 1")
    finally:
        await owner.close()
    report = await audit_verify(notifications_database)
    assert report.broken is not None
    assert report.broken.chain_seq == 1
