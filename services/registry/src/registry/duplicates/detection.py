"""Duplicate detection: run inside the transaction that registers members.

For each new member, candidates are found set-based for the whole batch (one
query per registration or per import batch), through indexes on exact
attributes: same date of birth (or with day and month swapped), same phone,
same email. Each candidate pair gets a name similarity from ``pg_trgm`` on the
name keys and a score (:mod:`registry.duplicates.scoring`); pairs at or above the
threshold become review cases, published as ``registry.duplicates.flagged``.
The registration itself is never refused: the person is registered and the
case waits for an officer.

Members of one batch are compared with each other as well (a file listing
someone twice): each pair once, the later row being the one flagged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal
from uuid import UUID

import uuid_utils.compat as uuid_compat
from sqlalchemy import delete, or_, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from diaspora_events.contracts import DuplicatesFlaggedV1
from diaspora_events.outbox import OutboxWriter
from registry.bulk import copy_rows
from registry.duplicates.normalise import email_key, name_key, swapped_day_month
from registry.duplicates.scoring import DEFAULT_THRESHOLD, Evidence, score
from registry.duplicates.tables import duplicate_cases, member_match_keys

Source = Literal["registration", "import"]


@dataclass(frozen=True)
class NewMember:
    """What detection needs of a member being registered."""

    member_id: UUID
    embassy_id: str
    given_name: str
    family_name: str
    date_of_birth: date
    phone: str
    email: str


@dataclass(frozen=True)
class FlaggedCase:
    case_id: UUID
    member_id: UUID
    match_id: UUID
    embassy_id: str
    score: float
    reasons: list[str]


async def flag_new_members(
    session: AsyncSession,
    outbox: OutboxWriter,
    rows: Sequence[Mapping[str, Any]],
    *,
    source: Source,
    threshold: float,
    import_job_id: UUID | None = None,
) -> list[FlaggedCase]:
    """:func:`record_and_flag` for new members' rows (columns of the members table);
    ``threshold``: the registry's setting (``REGISTRY_DUPLICATE_THRESHOLD``)."""
    return await record_and_flag(
        session,
        outbox,
        [new_member(r) for r in rows],
        source=source,
        import_job_id=import_job_id,
        threshold=threshold,
        bulk=source == "import",
    )


_KEY_COLUMNS = ("member_id", "embassy_id", "name_key", "date_of_birth", "phone", "email")


def new_member(row: Mapping[str, Any]) -> NewMember:
    """What detection needs of a new member's row (columns of the members table)."""
    return NewMember(
        member_id=row["id"],
        embassy_id=row["embassy_id"],
        given_name=row["given_name"],
        family_name=row["family_name"],
        date_of_birth=row["date_of_birth"],
        phone=row["phone"],
        email=row["email"],
    )


def match_key_row(member: NewMember) -> dict[str, object]:
    return {
        "member_id": member.member_id,
        "embassy_id": member.embassy_id,
        "name_key": name_key(member.given_name, member.family_name),
        "date_of_birth": member.date_of_birth,
        "phone": member.phone,
        "email": email_key(member.email),
    }


# The members columns the match keys are made of.
MATCH_KEY_FIELDS = frozenset(
    {"embassy_id", "given_name", "family_name", "date_of_birth", "phone", "email"}
)


async def refresh_match_keys(session: AsyncSession, row: Mapping[str, Any]) -> None:
    """A member's identifying fields changed (``row``: their members row as it now
    stands): their match keys follow, so that later registrations and imports are
    compared with what the record says now, not with what it said at registration."""
    keys = match_key_row(new_member(row))
    await session.execute(
        update(member_match_keys)
        .where(member_match_keys.c.member_id == keys.pop("member_id"))
        .values(**keys)
    )


# One query for a whole batch: the batch as arrays, candidates through the exact-attribute
# indexes, scored on the database's similarity() of the name keys. A pair inside the batch
# is kept once: the later member (higher ordinal) against the earlier one.
_CANDIDATES = text(
    """
    WITH batch AS (
        SELECT * FROM unnest(
            CAST(:ids AS uuid[]), CAST(:ords AS int[]), CAST(:keys AS text[]),
            CAST(:births AS date[]), CAST(:swapped AS date[]),
            CAST(:phones AS text[]), CAST(:emails AS text[])
        ) AS b(member_id, ord, name_key, birth, swapped, phone, email)
    ),
    pairs AS (
        SELECT b.member_id, k.member_id AS match_id
          FROM batch b JOIN member_match_keys k ON k.date_of_birth = b.birth
        UNION
        SELECT b.member_id, k.member_id
          FROM batch b JOIN member_match_keys k ON k.date_of_birth = b.swapped
        UNION
        SELECT b.member_id, k.member_id
          FROM batch b JOIN member_match_keys k ON k.phone = b.phone
        UNION
        SELECT b.member_id, k.member_id
          FROM batch b JOIN member_match_keys k ON k.email = b.email
    )
    SELECT p.member_id, p.match_id,
           similarity(b.name_key, k.name_key) AS name_similarity,
           k.date_of_birth = b.birth AS same_birth,
           k.date_of_birth IS NOT DISTINCT FROM b.swapped AS swapped_birth,
           k.phone = b.phone AS same_phone,
           k.email = b.email AS same_email
      FROM pairs p
      JOIN batch b ON b.member_id = p.member_id
      JOIN member_match_keys k ON k.member_id = p.match_id
      LEFT JOIN batch other ON other.member_id = p.match_id
     WHERE p.match_id <> p.member_id
       AND (other.ord IS NULL OR other.ord < b.ord)
    """
)


async def record_and_flag(
    session: AsyncSession,
    outbox: OutboxWriter,
    members: Sequence[NewMember],
    *,
    source: Source,
    import_job_id: UUID | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    bulk: bool = False,
) -> list[FlaggedCase]:
    """Record the new members' match keys, open a case for every likely duplicate pair and
    stage its event; returns the cases (in the caller's transaction). ``bulk`` (imports):
    the keys and events are written with COPY."""
    if not members:
        return []
    rows = [match_key_row(m) for m in members]
    if bulk:
        await copy_rows(
            session,
            member_match_keys,
            _KEY_COLUMNS,
            [tuple(r[c] for c in _KEY_COLUMNS) for r in rows],
        )
    else:
        await session.execute(member_match_keys.insert(), rows)
    cases = await _likely_pairs(session, members, rows, threshold)
    if not cases:
        return []
    now = datetime.now(UTC)
    cases.sort(key=lambda c: c.case_id)
    await session.execute(
        duplicate_cases.insert(),
        [
            {
                "id": c.case_id,
                "member_id": c.member_id,
                "match_id": c.match_id,
                "embassy_id": c.embassy_id,
                "score": c.score,
                "reasons": c.reasons,
                "source": source,
                "import_job_id": import_job_id,
                "status": "open",
                "flagged_at": now,
            }
            for c in cases
        ],
    )
    stage = outbox.copy_many if bulk else outbox.add_many
    await stage(
        session,
        [
            DuplicatesFlaggedV1(
                case_id=c.case_id,
                member_ids=[c.member_id, c.match_id],
                embassy_id=c.embassy_id,
                score=c.score,
                reasons=c.reasons,
                flagged_at=now,
            )
            for c in cases
        ],
    )
    return cases


async def _likely_pairs(
    executor: AsyncSession | AsyncConnection,
    members: Sequence[NewMember],
    rows: Sequence[Mapping[str, Any]],
    threshold: float,
) -> list[FlaggedCase]:
    """The pairs (new member, match) scoring at least ``threshold``: one query."""
    swapped = [swapped_day_month(m.date_of_birth) for m in members]
    found = await executor.execute(
        _CANDIDATES,
        {
            "ids": [m.member_id for m in members],
            "ords": list(range(len(members))),
            "keys": [r["name_key"] for r in rows],
            "births": [m.date_of_birth for m in members],
            "swapped": swapped,
            "phones": [r["phone"] for r in rows],
            "emails": [r["email"] for r in rows],
        },
    )
    embassy_of = {m.member_id: m.embassy_id for m in members}
    cases: list[FlaggedCase] = []
    for row in found.all():
        match = score(
            Evidence(
                name_similarity=float(row.name_similarity),
                same_birth_date=bool(row.same_birth),
                swapped_birth_date=bool(row.swapped_birth),
                same_phone=bool(row.same_phone),
                same_email=bool(row.same_email),
            )
        )
        if match.score < threshold:
            continue
        cases.append(
            FlaggedCase(
                case_id=uuid_compat.uuid7(),
                member_id=row.member_id,
                match_id=row.match_id,
                embassy_id=embassy_of[row.member_id],
                score=match.score,
                reasons=match.reasons,
            )
        )
    return cases


async def likely_duplicates(
    connection: AsyncConnection, member: NewMember, *, threshold: float
) -> list[FlaggedCase]:
    """The cases :func:`record_and_flag` would open for ``member``, found without writing
    anything (a registration with none registers in one statement)."""
    return await _likely_pairs(connection, [member], [match_key_row(member)], threshold)


async def forget_member(session: AsyncSession, member_id: UUID) -> None:
    """Erasure step: a person's match keys and every case naming them go with them."""
    await session.execute(
        delete(member_match_keys).where(member_match_keys.c.member_id == member_id)
    )
    await session.execute(
        delete(duplicate_cases).where(
            or_(
                duplicate_cases.c.member_id == member_id,
                duplicate_cases.c.match_id == member_id,
                duplicate_cases.c.survivor_id == member_id,
            )
        )
    )
