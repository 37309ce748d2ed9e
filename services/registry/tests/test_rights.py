"""The rights of the person against the real database: consents and their withdrawal,
the export of everything held, erasure (and its hooks), key rotation of document numbers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_identity.testing import (
    LocalIssuer,
    Persona,
    admin,
    analyst,
    citizen,
    coordinator,
    officer,
)
from registry.crypto import DocumentCipher, Sealed, generate_key, parse_keys
from registry.entrypoints.rekey import rekey, remaining
from registry.members.tables import (
    erased_members,
    member_changes,
    member_consents,
    member_documents,
    members,
)
from registry.resources import Registry
from registry.tables import audit_log, outbox

pytestmark = pytest.mark.integration

PASSPORT = "TG1122334"


def person(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "given_name": "Yawa",
        "family_name": "Amegbor",
        "date_of_birth": "1984-11-09",
        "country_of_residence": "FR",
        "email": "yawa.amegbor@example.org",
        "phone": "+33611223344",
        "postal_address": {"lines": ["3 place Bellecour"], "city": "Lyon", "country": "FR"},
        "documents": [{"kind": "passport", "number": PASSPORT}],
        "consents": {"contact_for_missions": True, "statistics": True},
    }
    body.update(overrides)
    return body


@asynccontextmanager
async def as_(url: str, issuer: LocalIssuer, persona: Persona) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url, timeout=20, headers=issuer.headers(persona)) as c:
        yield c


async def register(url: str, issuer: LocalIssuer, **overrides: Any) -> tuple[Persona, str]:
    me = citizen()
    async with as_(url, issuer, me) as client:
        response = await client.post("/members", json=person(**overrides))
        assert response.status_code == 201, response.text
    return me, response.json()["id"]


async def test_consents_are_given_withdrawn_and_kept_with_their_history(
    registry_url: str, identity_provider: LocalIssuer, registry: Registry
) -> None:
    me, member_id = await register(registry_url, identity_provider)
    path = f"/members/{member_id}/consents"
    async with as_(registry_url, identity_provider, me) as mine:
        withdrawn = await mine.delete(f"{path}/contact_for_missions")
        assert withdrawn.status_code == 200, withdrawn.text
        assert {c["purpose"]: c["granted"] for c in withdrawn.json()["consents"]} == {
            "contact_for_missions": False,
            "statistics": True,
        }
        again = await mine.delete(f"{path}/contact_for_missions")  # already withdrawn
        assert again.json()["version"] == withdrawn.json()["version"]
        given = await mine.put(f"{path}/newsletters")
        assert given.status_code == 200
        assert (await mine.put(f"{path}/marketing")).status_code == 422
        state = (await mine.get(path)).json()
    assert {c["purpose"]: c["granted"] for c in state["current"]} == {
        "contact_for_missions": False,
        "newsletters": True,
        "statistics": True,
    }
    assert [(h["purpose"], h["granted"], h["method"]) for h in state["history"]] == [
        ("newsletters", True, "self_service"),
        ("contact_for_missions", False, "self_service"),
        ("statistics", True, "self_service"),
        ("contact_for_missions", True, "self_service"),
    ]
    async with registry.sessions() as session:
        rows = await session.execute(
            select(outbox.c.event_type, outbox.c.value)
            .where(outbox.c.key == member_id)
            .order_by(outbox.c.id)
        )
        published = [(r.event_type, json.loads(r.value)) for r in rows]
        history = [r.action for r in await session.execute(select(member_changes.c.action))]
    assert [t for t, _ in published] == [
        "registry.member.registered",
        "registry.member.updated",
        "registry.member.updated",
    ]
    withdrawal = published[1][1]
    assert withdrawal["changed_fields"] == ["consents"]
    assert not any(
        c["granted"]
        for c in withdrawal["profile"]["consents"]
        if c["purpose"] == "contact_for_missions"
    )
    assert sorted(history) == ["consent_granted", "consent_withdrawn", "registered"]


async def test_staff_record_consents_saying_how_they_were_given(
    registry_url: str, identity_provider: LocalIssuer, registry: Registry
) -> None:
    _, member_id = await register(registry_url, identity_provider)
    path = f"/members/{member_id}/consents"
    paris, berlin = officer("fr-paris"), officer("de-berlin")
    async with as_(registry_url, identity_provider, paris) as staff:
        unsaid = await staff.put(f"{path}/newsletters")
        assert unsaid.status_code == 422
        assert [e["field"] for e in unsaid.json()["errors"]] == ["method"]
        said = await staff.put(f"{path}/newsletters", json={"method": "signed_form"})
        assert said.status_code == 200, said.text
        assert (await staff.delete(f"{path}/statistics")).status_code == 200
        assert (await staff.get(path)).status_code == 200
    async with as_(registry_url, identity_provider, berlin) as other:
        assert (
            await other.put(f"{path}/newsletters", json={"method": "in_person"})
        ).status_code == 404
        assert (await other.get(path)).status_code == 404
    async with as_(registry_url, identity_provider, analyst()) as observatory:
        assert (await observatory.get(path)).status_code == 403
    async with registry.sessions() as session:
        decisions = (
            await session.execute(
                select(
                    member_consents.c.purpose,
                    member_consents.c.granted,
                    member_consents.c.method,
                    member_consents.c.actor_subject,
                ).where(member_consents.c.actor_role == "embassy_officer")
            )
        ).all()
        audited = sorted(r.action for r in await session.execute(select(audit_log.c.action)))
    assert sorted(decisions) == [
        ("newsletters", True, "signed_form", paris.subject),
        ("statistics", False, "in_person", paris.subject),
    ]
    assert audited == ["grant", "read", "withdraw"]


async def test_staff_answers_that_change_nothing_are_audited_like_reads(
    registry_url: str, identity_provider: LocalIssuer, registry: Registry
) -> None:
    """A PATCH that changes nothing and a consent given again still return the whole
    record: done by staff, each is an entry in the person's access log (fields returned)."""
    me, member_id = await register(registry_url, identity_provider)
    paris = officer("fr-paris")
    async with as_(registry_url, identity_provider, paris) as staff:
        same = await staff.patch(f"/members/{member_id}", json={"given_name": "Yawa"})
        assert same.status_code == 200, same.text
        assert same.json()["email"] == "yawa.amegbor@example.org"
        again = await staff.put(
            f"/members/{member_id}/consents/statistics", json={"method": "signed_form"}
        )
        assert again.status_code == 200, again.text
        assert again.json()["phone"] == "+33611223344"
    async with as_(registry_url, identity_provider, me) as person_:
        log = (await person_.get(f"/members/{member_id}/access-log")).json()["items"]
    assert [(e["action"], e["actor_subject"]) for e in log] == [
        ("read", paris.subject),
        ("read", paris.subject),
    ]
    for entry in log:
        assert {"given_name", "email", "phone", "documents"} <= set(entry["fields"])
    # The person's own no-op changes are theirs: nothing to audit.
    async with as_(registry_url, identity_provider, me) as person_:
        mine = await person_.patch(f"/members/{member_id}", json={"given_name": "Yawa"})
        assert mine.status_code == 200
    async with registry.sessions() as session:
        count = (await session.execute(select(func.count()).select_from(audit_log))).scalar()
    assert count == 2


async def test_the_export_holds_everything_and_numbers_only_for_the_person(
    registry_url: str, identity_provider: LocalIssuer, registry: Registry
) -> None:
    me, member_id = await register(registry_url, identity_provider)
    paris = officer("fr-paris")
    async with as_(registry_url, identity_provider, paris) as staff:
        assert (await staff.get(f"/members/{member_id}")).status_code == 200
        assert (await staff.get(f"/members/{member_id}/export")).status_code == 403
    async with as_(registry_url, identity_provider, me) as mine:
        await mine.patch(f"/members/{member_id}", json={"arrival_year": 2009})
        await mine.delete(f"/members/{member_id}/consents/statistics")
        response = await mine.get(f"/members/{member_id}/export")
    assert response.status_code == 200, response.text
    assert "attachment" in response.headers["content-disposition"]
    export = response.json()
    record = export["member"]
    assert record["id"] == member_id
    assert record["given_name"] == "Yawa"
    assert record["postal_address"]["lines"] == ["3 place Bellecour"]
    assert record["documents"][0]["number"] == PASSPORT
    assert record["owner_subject"] == me.subject
    assert [h["action"] for h in export["history"]] == [
        "registered",
        "updated",
        "consent_withdrawn",
    ]
    assert [(c["purpose"], c["granted"]) for c in export["consent_decisions"]] == [
        ("contact_for_missions", True),
        ("statistics", True),
        ("statistics", False),
    ]
    assert [(a["actor_subject"], a["action"]) for a in export["access_log"]] == [
        (paris.subject, "read")
    ]
    # An admin produces it for a request made on paper: no numbers, and it is audited.
    async with as_(registry_url, identity_provider, admin()) as staff:
        copy = await staff.get(f"/members/{member_id}/export")
    assert copy.status_code == 200
    assert PASSPORT not in copy.text
    assert copy.json()["member"]["documents"][0]["kind"] == "passport"
    async with registry.sessions() as session:
        actions = [r.action for r in await session.execute(select(audit_log.c.action))]
    assert actions.count("export") == 1
    # Someone else's export is "not found".
    async with as_(registry_url, identity_provider, citizen()) as stranger:
        assert (await stranger.get(f"/members/{member_id}/export")).status_code == 404


async def counts(session: AsyncSession, member_id: str) -> dict[str, int]:
    found = {}
    for name, column in (
        ("members", members.c.id),
        ("documents", member_documents.c.member_id),
        ("consents", member_consents.c.member_id),
        ("changes", member_changes.c.member_id),
    ):
        found[name] = int(
            (
                await session.execute(
                    select(func.count()).select_from(column.table).where(column == UUID(member_id))
                )
            ).scalar_one()
        )
    return found


async def test_erasure_by_the_person_leaves_only_ids_and_tells_everyone(
    registry_url: str, identity_provider: LocalIssuer, registry: Registry
) -> None:
    me, member_id = await register(registry_url, identity_provider)
    async with as_(registry_url, identity_provider, officer("fr-paris")) as staff:
        await staff.get(f"/members/{member_id}")
    async with as_(registry_url, identity_provider, me) as mine:
        await mine.patch(f"/members/{member_id}", json={"given_name": "Yawa Esi"})
        erased = await mine.delete(f"/members/{member_id}")
        assert erased.status_code == 204
        assert (await mine.get(f"/members/{member_id}")).status_code == 404
        assert (await mine.delete(f"/members/{member_id}")).status_code == 404
        # Erasure frees the identity: the person may register again.
        again = await mine.post("/members", json=person(given_name="Yawa"))
        assert again.status_code == 201
        assert again.json()["id"] != member_id
    async with registry.sessions() as session:
        assert await counts(session, member_id) == {
            "members": 0,
            "documents": 0,
            "consents": 0,
            "changes": 0,
        }
        tombstone = (await session.execute(select(erased_members))).one()
        kept = await session.execute(
            select(outbox.c.event_type, outbox.c.value).where(outbox.c.key == member_id)
        )
        kept_events = [(r.event_type, r.value) for r in kept]
        audits = (
            (
                await session.execute(
                    select(audit_log).where(audit_log.c.record_id == UUID(member_id))
                )
            )
            .mappings()
            .all()
        )
    assert str(tombstone.member_id) == member_id
    assert tombstone.actor_role == "citizen"
    assert tombstone.actor_subject is None
    # Only the erasure event (and the audit events, ids only) stay in the outbox.
    assert sorted(t for t, _ in kept_events) == [
        "registry.audit.recorded",
        "registry.member.erased",
    ]
    for _, value in kept_events:
        for secret in (b"Yawa", b"Amegbor", b"yawa.amegbor", b"+33611223344", PASSPORT.encode()):
            assert secret not in value
    assert len(audits) == 1
    assert "Yawa" not in repr(dict(audits[0]))


async def test_erasure_scope_staff_and_hooks_in_the_same_transaction(
    registry_url: str, identity_provider: LocalIssuer, registry: Registry
) -> None:
    _, member_id = await register(registry_url, identity_provider)
    path = f"/members/{member_id}"
    for persona, status in (
        (citizen(), 404),
        (officer("de-berlin"), 404),
        (analyst(), 403),
    ):
        async with as_(registry_url, identity_provider, persona) as other:
            assert (await other.delete(path)).status_code == status
    seen: list[UUID] = []

    async def failing_step(session: AsyncSession, erased: UUID) -> None:
        seen.append(erased)
        await session.execute(text("SELECT 1"))
        raise RuntimeError("the duplicates review could not let go")

    async def recording_step(session: AsyncSession, erased: UUID) -> None:
        # Runs in the erasure's transaction: the member row is still there, locked.
        found = await session.execute(select(members.c.id).where(members.c.id == erased))
        assert found.first() is not None
        seen.append(erased)

    registry.erasure_steps.append(failing_step)
    try:
        async with as_(registry_url, identity_provider, coordinator()) as ministry:
            failed = await ministry.delete(path)
        assert failed.status_code == 500
        async with registry.sessions() as session:
            assert (await counts(session, member_id))["members"] == 1  # nothing erased
    finally:
        registry.erasure_steps.remove(failing_step)
    registry.erasure_steps.append(recording_step)
    paris = officer("fr-paris")
    try:
        async with as_(registry_url, identity_provider, paris) as staff:
            stale = await staff.delete(path, headers={"If-Match": '"7"'})
            assert stale.status_code == 412
            assert (await staff.delete(path, headers={"If-Match": '"1"'})).status_code == 204
    finally:
        registry.erasure_steps.remove(recording_step)
    assert seen == [UUID(member_id), UUID(member_id)]
    async with registry.sessions() as session:
        tombstone = (await session.execute(select(erased_members))).one()
        erasure_audit = (
            await session.execute(select(audit_log).where(audit_log.c.action == "erase"))
        ).one()
    assert (tombstone.actor_role, tombstone.actor_subject) == ("embassy_officer", paris.subject)
    assert erasure_audit.actor_subject == paris.subject
    assert erasure_audit.fields == ["erased"]


async def test_rekey_moves_every_number_to_the_active_key(
    registry_url: str, identity_provider: LocalIssuer, registry: Registry
) -> None:
    me, member_id = await register(registry_url, identity_provider)
    await register(
        registry_url,
        identity_provider,
        email="kodjo@example.org",
        documents=[{"kind": "national_id_card", "number": "CNI-77"}],
    )
    old_id = registry.cipher.active_key_id
    assert old_id != "2026-12"
    old_keys = registry.settings.document_keys
    rotated = DocumentCipher(parse_keys(f"2026-12:{generate_key()},{old_keys}"), "2026-12")
    assert await remaining(registry.sessions, "2026-12") == 2
    assert await rekey(registry.sessions, rotated, batch=1) == 2
    assert await remaining(registry.sessions, "2026-12") == 0
    async with registry.sessions() as session:
        rows = (await session.execute(select(member_documents))).mappings().all()
    assert {r["key_id"] for r in rows} == {"2026-12"}
    passport = next(r for r in rows if r["kind"] == "passport")
    assert (
        rotated.open(
            Sealed(passport["key_id"], passport["number_ciphertext"]),
            member_id=passport["member_id"],
            kind="passport",
        )
        == PASSPORT
    )
    # The service keeps reading with the rotated keys (the old one may now go).
    registry.cipher = rotated
    async with as_(registry_url, identity_provider, me) as mine:
        record = (await mine.get(f"/members/{member_id}")).json()
    assert record["documents"][0]["number"] == PASSPORT
