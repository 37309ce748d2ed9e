"""The contact kept of each member, following the registry's member snapshots.

A snapshot whose email or phone differs from the stored one makes it unverified
(``email_verified_at``/``phone_verified_at`` NULL): see notifications.contacts.verification.

``registry.member.registered``, ``.updated``, ``.confirmed`` and ``.marked-stale`` carry
the member as it stands after the event. Each is applied to ``recipients`` (contact,
preferred language, country of residence - hence the quiet-hours zone -, ISCO codes
of the occupations and the embassy for segments) only if the event is at least as
recent as the snapshot stored (``source_time``, the event's own time), and never for
a member in ``removed_members`` (erased, or merged into another record).

The registry's ``newsletters`` consent decision (granted or withdrawn, with its
time) is carried over to the person's ``preferences.consents`` (category
``newsletter``), which both single messages and campaign audiences check:

- a decision is applied once (``recipients.newsletter_consent_at``); an older or
  already applied one changes nothing;
- a withdrawal always removes the consent;
- a grant adds it unless the person changed their notification preferences after
  deciding in the registry (their later choice here stands).

Merge (``registry.member.merged``): the survivor's recipient row is made ready
(``merge_into``), then each feature moves its own rows of the absorbed record to the
survivor (its ``merge_member``: inbox and preferences, delivery log, campaign
audiences); then the absorbed record is erased like a person who asked for it, and
stays removed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    bindparam,
    case,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.contracts.registry import MemberProfile
from notifications.contacts.tables import removed_members
from notifications.preferences import service as preferences_service
from notifications.tables import recipients

REGISTRY_NEWSLETTERS = "newsletters"  # the registry's consent purpose

_COLUMNS = (
    "member_id",
    "given_name",
    "family_name",
    "email",
    "phone",
    "language",
    "country_of_residence",
    "occupations",
    "attributes",
    "source_time",
)


def _upsert_snapshot() -> Any:
    """Insert or replace a recipient, unless removed or the stored snapshot is newer."""
    params = [bindparam(c, type_=recipients.c[c].type) for c in _COLUMNS]
    removed = exists().where(removed_members.c.member_id == params[0])
    statement = insert(recipients).from_select(list(_COLUMNS), select(*params).where(~removed))
    return statement.on_conflict_do_update(
        index_elements=[recipients.c.member_id],
        set_={
            **{c: statement.excluded[c] for c in _COLUMNS if c != "member_id"},
            "updated_at": func.now(),
            # A new address is not proven by the old one's verification.
            "email_verified_at": case(
                (
                    recipients.c.email == statement.excluded.email,
                    recipients.c.email_verified_at,
                ),
                else_=None,
            ),
            "phone_verified_at": case(
                (
                    recipients.c.phone == statement.excluded.phone,
                    recipients.c.phone_verified_at,
                ),
                else_=None,
            ),
        },
        where=or_(
            recipients.c.source_time.is_(None),
            recipients.c.source_time <= statement.excluded.source_time,
        ),
    ).returning(recipients.c.member_id)


# Built once (registration is the hot path: one statement per event).
UPSERT_SNAPSHOT = _upsert_snapshot()


def contact_of(profile: MemberProfile) -> dict[str, Any]:
    return {
        "given_name": profile.given_name,
        "family_name": profile.family_name,
        "email": profile.email,
        "phone": profile.phone,
        "language": profile.preferred_language,
        "country_of_residence": profile.country_of_residence.upper(),
        "occupations": sorted({o.isco_code for o in profile.occupations}),
        "attributes": {"embassy_id": profile.embassy_id},
    }


async def apply_contact(
    session: AsyncSession, member_id: UUID, contact: dict[str, Any], at: datetime
) -> bool:
    """Store the contact as of ``at``; False when ignored (removed member, older event)."""
    values = {"occupations": [], "attributes": {}, **contact}
    row = (
        await session.execute(
            UPSERT_SNAPSHOT, {"member_id": member_id, "source_time": at, **values}
        )
    ).first()
    return row is not None


async def apply_snapshot(
    session: AsyncSession, member_id: UUID, profile: MemberProfile, at: datetime
) -> bool:
    """Apply a member snapshot (contact, segments, newsletters consent) as of ``at``."""
    if not await apply_contact(session, member_id, contact_of(profile), at):
        return False
    await apply_newsletter_consent(session, member_id, profile)
    return True


async def apply_newsletter_consent(
    session: AsyncSession, member_id: UUID, profile: MemberProfile
) -> None:
    decision = next((c for c in profile.consents if c.purpose == REGISTRY_NEWSLETTERS), None)
    if decision is None:  # never decided in the registry: the preferences stand
        return
    fresh = (
        await session.execute(
            update(recipients)
            .where(
                recipients.c.member_id == member_id,
                or_(
                    recipients.c.newsletter_consent_at.is_(None),
                    recipients.c.newsletter_consent_at < decision.at,
                ),
            )
            .values(newsletter_consent_at=decision.at)
            .returning(recipients.c.member_id)
        )
    ).first()
    if fresh is None:
        return
    await preferences_service.apply_newsletter_decision(
        session, member_id, granted=decision.granted, at=decision.at
    )


async def is_removed(session: AsyncSession, member_id: UUID) -> bool:
    row = await session.execute(
        select(removed_members.c.member_id).where(removed_members.c.member_id == member_id)
    )
    return row.first() is not None


async def record_removed(
    session: AsyncSession,
    member_id: UUID,
    *,
    reason: str,
    at: datetime,
    survivor_id: UUID | None = None,
) -> None:
    """Erasure or merge is final: the first one recorded stays."""
    await session.execute(
        insert(removed_members)
        .values(member_id=member_id, reason=reason, survivor_id=survivor_id, removed_at=at)
        .on_conflict_do_nothing(index_elements=[removed_members.c.member_id])
    )


async def merge_into(session: AsyncSession, absorbed_id: UUID, survivor_id: UUID) -> bool:
    """Make the survivor's recipient row ready to take what the absorbed record holds;
    False if there is nothing to move (the absorbed record is unknown here, or the
    survivor was removed).

    When notifications does not know the survivor yet, the absorbed contact is copied
    as a placeholder (``source_time`` NULL: the survivor's own snapshot, which the
    registry publishes with the merge, replaces it). The caller then runs the other
    features' merge steps (each moves its own rows: ``bootstrap.MERGE_STEPS``), erases
    the absorbed id (what is left of it) and records it removed.
    """
    absorbed = (
        await session.execute(
            select(recipients).where(recipients.c.member_id == absorbed_id).with_for_update()
        )
    ).first()
    if absorbed is None or await is_removed(session, survivor_id):
        return False
    copied = {
        c: getattr(absorbed, c)
        for c in (
            "given_name",
            "family_name",
            "email",
            "phone",
            "language",
            "country_of_residence",
            "occupations",
            "attributes",
            # Verified as the absorbed record was; the survivor's snapshot resets what
            # differs (a different address is not verified).
            "email_verified_at",
            "phone_verified_at",
            "registered_at",
            "welcomed_at",
        )
    }
    await session.execute(
        insert(recipients)
        .values(member_id=survivor_id, source_time=None, **copied)
        .on_conflict_do_nothing(index_elements=[recipients.c.member_id])
    )
    return True


async def erase_member(session: AsyncSession, member_id: UUID) -> None:
    """Erasure step, the last one (the other features' rows refer to the recipient)."""
    await session.execute(delete(recipients).where(recipients.c.member_id == member_id))
