"""Changes to a member's profile: an update or a confirmation, each one transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.contracts import MemberConfirmedV1, MemberUpdatedV1
from diaspora_events.outbox import OutboxWriter
from diaspora_identity.audit import AccessContext, AuditTrail
from diaspora_identity.jurisdictions import Jurisdictions
from diaspora_identity.policy import Decision
from registry.crypto import DocumentCipher
from registry.duplicates.detection import MATCH_KEY_FIELDS, refresh_match_keys
from registry.members.access import actor_for, bump, check_version, locked_member, returned
from registry.members.columns import city_columns
from registry.members.domain import UpdateMember
from registry.members.errors import InvalidChange
from registry.members.records import (
    MEMBER_FIELDS,
    PROFILE_FIELDS,
    REQUIRED_FIELDS,
    UPDATABLE_FIELDS,
    consents_of,
    documents_of,
    jsonable,
    profile_of,
    record_change,
    view_of,
    write_documents,
)


async def update_member(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    audit: AuditTrail,
    jurisdictions: Jurisdictions,
    cipher: DocumentCipher,
    decision: Decision,
    context: AccessContext,
    command: UpdateMember,
) -> tuple[dict[str, Any], list[str]]:
    """Change fields of a member's profile: the person (self-service) or staff within scope
    (correction, audited). Returns the record as it now stands and the fields that changed.

    Every change leaves a line in the history (who, when, old and new values) and a
    ``registry.member.updated`` event with the whole profile, in one transaction. A change
    of country re-derives the embassy; a city is looked up in the (new) country, and a
    change of country without a city clears the city. Nothing changed: no version, no event.
    """
    unknown = set(command.changes) - set(UPDATABLE_FIELDS)
    if unknown:
        raise InvalidChange(sorted(unknown)[0], "this field cannot be changed")
    for name, value in command.changes.items():
        if name in REQUIRED_FIELDS and value is None:
            raise InvalidChange(name, "this field is required and cannot be cleared")
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        row = await locked_member(session, decision, command.member_id)
        check_version(row, command.expected_version)
        actor = actor_for(decision, row)
        documents = (await documents_of(session, [row["id"]]))[row["id"]]
        consents = (await consents_of(session, [row["id"]]))[row["id"]]
        before = view_of(row, documents, consents, cipher=cipher, with_numbers=True)

        changes = dict(command.changes)
        country = changes.get("country_of_residence") or row["country_of_residence"]
        if country != row["country_of_residence"] and "city" not in changes:
            changes["city"] = None
        values = city_columns(
            {k: v for k, v in changes.items() if k != "documents"}, country=country
        )
        if "country_of_residence" in changes:
            values["embassy_id"] = jurisdictions.embassy_for(country)
        candidate = view_of(
            {**row, **values},
            [
                {
                    "member_id": row["id"],
                    "kind": d.kind,
                    "issuing_country": d.issuing_country,
                    "expires_on": d.expires_on,
                }
                for d in changes["documents"]
            ]
            if "documents" in changes
            else documents,
            consents,
        )
        if "documents" in changes:
            for view, document in zip(candidate["documents"], changes["documents"], strict=True):
                view["number"] = document.number
        else:
            candidate["documents"] = before["documents"]
        changed = [
            f
            for f in MEMBER_FIELDS
            if f in (*UPDATABLE_FIELDS, "embassy_id")
            and jsonable(before[f]) != jsonable(candidate[f])
        ]
        if not changed:
            unchanged = view_of(row, documents, consents)
            if not actor.is_person:
                # Nothing changed, but the whole record goes back: staff read it (issue 15).
                await audit.record(
                    session, decision, context, [(row["id"], returned(unchanged))], action="read"
                )
            return unchanged, []
        after_row = await bump(session, row["id"], values, now)
        if MATCH_KEY_FIELDS.intersection(changed):
            await refresh_match_keys(session, after_row)
        if "documents" in changed:
            await write_documents(session, cipher, row["id"], changes["documents"])
        after = view_of(after_row, (await documents_of(session, [row["id"]]))[row["id"]], consents)
        await record_change(
            session,
            member_id=row["id"],
            action="updated",
            actor_role=actor.role,
            actor_subject=actor.subject,
            fields=changed,
            old=before,
            new=candidate,
            version=after_row["version"],
            request_id=context.request_id,
            at=now,
        )
        profile_changes = [f for f in changed if f in PROFILE_FIELDS]
        if profile_changes:
            await outbox.add(
                session,
                MemberUpdatedV1(
                    member_id=row["id"],
                    updated_at=now,
                    changed_fields=profile_changes,
                    profile=profile_of(after_row, consents),
                ),
                subject=str(row["id"]),
            )
        if not actor.is_person:
            await audit.record(session, decision, context, [(row["id"], changed)])
    return after, changed


async def confirm_member(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    audit: AuditTrail,
    decision: Decision,
    context: AccessContext,
    member_id: UUID,
    expected_version: int | None = None,
) -> dict[str, Any]:
    """The person confirms their profile is still true (or staff record that they did,
    in their presence): ``last_confirmed_at`` is now, ``registry.member.confirmed`` goes out."""
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        row = await locked_member(session, decision, member_id)
        check_version(row, expected_version)
        actor = actor_for(decision, row)
        after_row = await bump(session, member_id, {"last_confirmed_at": now}, now)
        documents = (await documents_of(session, [member_id]))[member_id]
        consents = (await consents_of(session, [member_id]))[member_id]
        await record_change(
            session,
            member_id=member_id,
            action="confirmed",
            actor_role=actor.role,
            actor_subject=actor.subject,
            fields=["last_confirmed_at"],
            old={"last_confirmed_at": row["last_confirmed_at"]},
            new={"last_confirmed_at": now},
            version=after_row["version"],
            request_id=context.request_id,
            at=now,
        )
        await outbox.add(
            session,
            MemberConfirmedV1(
                member_id=member_id, confirmed_at=now, profile=profile_of(after_row, consents)
            ),
            subject=str(member_id),
        )
        if not actor.is_person:
            await audit.record(session, decision, context, [(member_id, ["last_confirmed_at"])])
    return view_of(after_row, documents, consents)
