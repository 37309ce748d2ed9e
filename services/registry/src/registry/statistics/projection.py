"""Keeping the statistics read model: apply one member's latest snapshot, or remove them.

Each change is applied as the difference between the member's previous facts and
the new ones, in the consumer's transaction (with the inbox row), so a redelivered
event changes nothing and the counters always equal a recount of ``stats_members``
(:func:`rebuild_counts` recounts; the tests compare both).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, delete, exists, func, literal, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.contracts.registry import MemberProfile
from registry.statistics.facts import ALL, SINGLE, Facts, facts_of
from registry.statistics.tables import (
    read_model_removed,
    stats_cities,
    stats_counts,
    stats_labels,
    stats_members,
)

Cell = tuple[str, str, str, str, str]


async def is_removed(session: AsyncSession, member_id: UUID) -> bool:
    found = await session.execute(
        select(read_model_removed.c.member_id).where(read_model_removed.c.member_id == member_id)
    )
    return found.first() is not None


async def _previous(session: AsyncSession, member_id: UUID) -> Facts | None:
    row = (
        await session.execute(
            select(stats_members).where(stats_members.c.member_id == member_id).with_for_update()
        )
    ).first()
    return Facts.of_row(row) if row else None


def _counts_upsert() -> Any:
    statement = pg_insert(stats_counts)
    return statement.on_conflict_do_update(
        constraint="stats_counts_pkey",
        set_={"members": stats_counts.c.members + statement.excluded.members},
    )


# Fixed statements run with many parameter sets (executemany): compiled once, whatever
# the number of counters an event touches.
_UPSERT_COUNTS = _counts_upsert()
_DELETE_EMPTY = delete(stats_counts).where(
    stats_counts.c.dimension == bindparam("d"),
    stats_counts.c.embassy_id == bindparam("e"),
    stats_counts.c.country == bindparam("c"),
    stats_counts.c.isco_major == bindparam("m"),
    stats_counts.c.key == bindparam("k"),
    stats_counts.c.members <= 0,
)
_INSERT_LABELS = pg_insert(stats_labels).on_conflict_do_nothing()


async def _add(session: AsyncSession, delta: Counter[Cell]) -> None:
    changes = sorted((cell, n) for cell, n in delta.items() if n)
    if not changes:
        return
    # Sorted, so that two transactions touching the same counters lock them in one order.
    await session.execute(
        _UPSERT_COUNTS,
        [
            {"dimension": d, "embassy_id": e, "country": c, "isco_major": m, "key": k, "members": n}
            for (d, e, c, m, k), n in changes
        ],
    )
    emptied = [cell for cell, n in changes if n < 0]
    if emptied:
        await session.execute(
            _DELETE_EMPTY, [{"d": d, "e": e, "c": c, "m": m, "k": k} for d, e, c, m, k in emptied]
        )
        await _forget_unused(session, {(d, k) for (d, _e, _c, _m, k) in emptied})


async def _forget_unused(session: AsyncSession, keys: Iterable[tuple[str, str]]) -> None:
    """Drop the city and label of keys no member is counted under any more (after an
    erasure nothing the person typed stays behind)."""
    for dimension, key in keys:
        if dimension not in ("city", "skill"):
            continue
        still = exists().where(
            stats_counts.c.dimension == dimension,
            stats_counts.c.key == key,
            stats_counts.c.country == ALL,
            stats_counts.c.isco_major == ALL,
        )
        if dimension == "city":
            await session.execute(
                delete(stats_cities).where(stats_cities.c.city_key == key, ~still)
            )
        else:
            await session.execute(
                delete(stats_labels).where(
                    stats_labels.c.dimension == dimension, stats_labels.c.key == key, ~still
                )
            )


async def apply_profile(
    session: AsyncSession,
    member_id: UUID,
    profile: MemberProfile,
    *,
    as_of: datetime,
    require_consent: bool = False,
) -> bool:
    """Count the member as ``profile`` says; False when the event is older than what is
    applied already, or the member was removed."""
    if await is_removed(session, member_id):
        return False
    previous = await _previous(session, member_id)
    if previous is not None and previous.as_of > as_of:
        return False
    facts, city, labels = facts_of(member_id, profile, as_of=as_of, require_consent=require_consent)
    if city is not None and facts.counted:
        await session.execute(
            pg_insert(stats_cities)
            .values(
                city_key=city.key,
                country=facts.country,
                name=city.name,
                latitude=city.latitude,
                longitude=city.longitude,
            )
            .on_conflict_do_nothing()
        )
    if labels and facts.counted:
        await session.execute(
            _INSERT_LABELS,
            [{"dimension": "skill", "key": k, "label": v} for k, v in sorted(labels.items())],
        )
    row = facts.row()
    statement = pg_insert(stats_members).values(**row)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[stats_members.c.member_id],
            set_={k: statement.excluded[k] for k in row if k != "member_id"},
        )
    )
    delta: Counter[Cell] = Counter(facts.cells())
    if previous is not None:
        delta.subtract(previous.cells())
    await _add(session, delta)
    return True


async def remove_member(session: AsyncSession, member_id: UUID, *, reason: str) -> None:
    """Take the member's contribution out (erased, or merged into another record)."""
    previous = await _previous(session, member_id)
    await session.execute(
        pg_insert(read_model_removed)
        .values(member_id=member_id, reason=reason)
        .on_conflict_do_nothing()
    )
    if previous is None:
        return
    await session.execute(delete(stats_members).where(stats_members.c.member_id == member_id))
    delta: Counter[Cell] = Counter()
    delta.subtract(previous.cells())
    await _add(session, delta)


# -- recount -------------------------------------------------------------------------

_COLUMN = {
    "total": literal("all"),
    "embassy": stats_members.c.embassy_id,
    "country": stats_members.c.country,
    "city": stats_members.c.city_key,
    "occupation": stats_members.c.isco_major,
    "occupation_submajor": stats_members.c.isco_submajor,
    "education": stats_members.c.isced,
    "sex": stats_members.c.sex,
    "birth_year": func.cast(stats_members.c.birth_year, stats_counts.c.key.type),
}


async def rebuild_counts(session: AsyncSession) -> int:
    """Recount every counter from ``stats_members`` (after a bulk load, or to check the
    incremental counts); returns the number of counters. Runs in the caller's transaction."""
    await session.execute(delete(stats_counts))
    # Count at the base (embassy, country, major) level first, then add up the "*" slices.
    await session.execute(
        text(
            "WITH base AS ("  # noqa: S608 - fixed names only
            "SELECT dimension, embassy_id, country, isco_major, key, count(*) AS members "
            "FROM (" + " UNION ALL ".join(_dimension_selects()) + ") AS keys "
            "GROUP BY dimension, embassy_id, country, isco_major, key) "
            "INSERT INTO stats_counts (dimension, embassy_id, country, isco_major, key, members) "
            "SELECT dimension, embassy_id, c, m, key, sum(members)::int FROM base "
            "CROSS JOIN LATERAL (VALUES (country, isco_major), (country, '*'), "
            "('*', isco_major), ('*', '*')) AS s(c, m) "
            "GROUP BY dimension, embassy_id, c, m, key"
        )
    )
    total = await session.execute(select(func.count()).select_from(stats_counts))
    return int(total.scalar_one())


def _dimension_selects() -> list[str]:
    selects = []
    for dimension in SINGLE:
        column = _COLUMN[dimension]
        compiled = str(
            select(
                literal(dimension).label("dimension"),
                stats_members.c.embassy_id,
                stats_members.c.country,
                stats_members.c.isco_major,
                column.label("key"),
            )
            .where(stats_members.c.counted)
            .compile(compile_kwargs={"literal_binds": True})
        )
        selects.append(compiled)
    for dimension, column_name in (("skill", "skills"), ("language", "languages")):
        selects.append(
            f"SELECT '{dimension}' AS dimension, embassy_id, country, isco_major, "  # noqa: S608
            f"unnest({column_name}) AS key FROM stats_members WHERE counted"
        )
    return selects


async def counts_match_recount(session: AsyncSession) -> bool:
    """Whether the incremental counters equal a recount (used by tests and ops checks)."""
    current = {tuple(r[:5]): r[5] for r in (await session.execute(select(stats_counts))).all()}
    await session.execute(text("SAVEPOINT recount"))
    await rebuild_counts(session)
    recount = {tuple(r[:5]): r[5] for r in (await session.execute(select(stats_counts))).all()}
    await session.execute(text("ROLLBACK TO SAVEPOINT recount"))
    return current == recount
