"""Consular's audit trail has the registry's integrity (issue 15): officers' reads and
decisions are chained entries that `diaspora-ops audit-verify` checks, and the service's
runtime role can only add them."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from consular_testing import (
    answers_for,
    known_applicant,
    new_member_id,
    profile,
    upload_required_documents,
)

from consular.resources import Consular
from diaspora_devstack.testing import app_url
from diaspora_identity.testing import LocalIssuer, citizen, officer
from diaspora_service.ops import audit_verify

pytestmark = pytest.mark.integration


async def test_officers_accesses_are_chained_and_the_runtime_role_cannot_alter_them(
    consular: Consular,
    http: httpx.AsyncClient,
    consular_database: str,
    identity_provider: LocalIssuer,
) -> None:
    member_id = new_member_id()
    await known_applicant(consular, member_id, profile(verified=True))
    person = identity_provider.headers(citizen(member_id=member_id))
    paris = identity_provider.headers(officer("fr-paris"))
    created = await http.post(
        "/applications",
        json={"service_type": "consular_card", "answers": answers_for("consular_card")},
        headers=person,
    )
    app_id = created.json()["id"]
    await upload_required_documents(http, person, app_id, "consular_card")
    submitted = await http.post(
        f"/applications/{app_id}/transitions", json={"action": "submit"}, headers=person
    )
    assert submitted.status_code == 200, submitted.text
    # Two audited accesses: the officer's read and their review.
    assert (await http.get(f"/applications/{app_id}", headers=paris)).status_code == 200
    started = await http.post(
        f"/applications/{app_id}/transitions", json={"action": "start_review"}, headers=paris
    )
    assert started.status_code == 200, started.text

    runtime = await asyncpg.connect(app_url(consular_database, "consular"))
    try:
        for statement in (
            "UPDATE audit_log SET fields = '{}'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_chain",
            "DROP TRIGGER audit_log_no_update_delete ON audit_log",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await runtime.execute(statement)
    finally:
        await runtime.close()

    report = await audit_verify(consular_database)
    assert report.ok, report.broken
    assert (report.entries, report.head_seq) == (2, 2)

    owner = await asyncpg.connect(consular_database)
    try:
        await owner.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete")
        await owner.execute("UPDATE audit_log SET action = 'read' WHERE chain_seq = 2")
    finally:
        await owner.close()
    report = await audit_verify(consular_database)
    assert report.broken is not None
    assert report.broken.chain_seq == 2
