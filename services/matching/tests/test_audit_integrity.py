"""Matching's audit trail has the registry's integrity (issue 15): the candidates a
coordinator is shown are chained entries that `diaspora-ops audit-verify` checks, and the
service's runtime role can only add them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from matching_testing.experts import new_member_id, profile, updated

from diaspora_devstack.testing import app_url
from diaspora_identity.testing import LocalIssuer, coordinator
from diaspora_service.ops import audit_verify
from matching.experts.projection import apply_event
from matching.resources import Matching

pytestmark = pytest.mark.integration

STARTS = date.today() + timedelta(days=60)
NEED: dict[str, Any] = {
    "title": "Enseignant de chirurgie",
    "type": "teaching",
    "institution": "Université de Lomé",
    "institution_kind": "university",
    "description": "Cours de chirurgie pour les internes.",
    "occupations": ["2212"],
    "skills": [{"label": "chirurgie"}],
    "languages": ["fr"],
    "starts_on": STARTS.isoformat(),
    "ends_on": (STARTS + timedelta(days=30)).isoformat(),
    "region": "TG-M",
    "publish": True,
}


async def test_rankings_are_chained_and_the_runtime_role_cannot_alter_them(
    matching: Matching, matching_url: str, matching_database: str, identity_provider: LocalIssuer
) -> None:
    surgeons = [new_member_id() for _ in range(2)]
    async with matching.sessions() as session, session.begin():
        for member_id in surgeons:
            attributes = {"occupations": [("2212", "Chirurgien")], "skills": ["chirurgie"]}
            await apply_event(session, updated(member_id, profile(**attributes)), datetime.now(UTC))
    async with httpx.AsyncClient(
        base_url=matching_url, timeout=20, headers=identity_provider.headers(coordinator())
    ) as client:
        # The service audits each candidate shown, as its runtime role.
        need = (await client.post("/needs", json=NEED)).json()
        ranked = (await client.get(f"/needs/{need['id']}/candidates")).json()["items"]
        assert {i["member_id"] for i in ranked} == {str(m) for m in surgeons}
        # A hand-written INSERT as that role is chained too.
        runtime = await asyncpg.connect(app_url(matching_database, "matching"))
        try:
            await runtime.execute(
                "INSERT INTO audit_log (audit_id, actor_subject, actor_roles, actor_is_service, "
                "action, resource, record_id, fields) VALUES (gen_random_uuid(), 'c-1', "
                "'{ministry_coordinator}', false, 'rank', 'need_candidates', gen_random_uuid(), "
                "'{given_name}')"
            )
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

    report = await audit_verify(matching_database)
    assert report.ok, report.broken
    assert (report.entries, report.head_seq) == (3, 3)

    owner = await asyncpg.connect(matching_database)
    try:
        await owner.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete")
        await owner.execute("DELETE FROM audit_log WHERE chain_seq = 1")
    finally:
        await owner.close()
    report = await audit_verify(matching_database)
    assert report.broken is not None
    assert report.broken.reason == "entries missing (deleted?)"
    assert (report.broken.chain_seq, report.broken.expected) == (2, "chain_seq 1")
