"""The search read model: each member's terms (``member_search``) and the vocabulary of
name words (``name_words``), kept by the ``registry-read-models`` consumer beside the
statistics (:mod:`registry.statistics.consumer`) and read by :mod:`registry.search`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.contracts.registry import MemberProfile
from diaspora_reference import places
from registry.duplicates.normalise import name_words
from registry.statistics.facts import city_of, skill_key
from registry.statistics.tables import member_search
from registry.statistics.tables import name_words as vocabulary


def terms_of(profile: MemberProfile) -> list[str]:
    """Every searchable attribute of a profile as a ``kind:value`` term."""
    terms: set[str] = {f"n:{w}" for w in name_words(profile.given_name, profile.family_name)}
    country = profile.country_of_residence.upper()
    terms.add(f"c:{country}")
    terms.add(f"emb:{profile.embassy_id}")
    city = city_of(profile)
    if city is not None:
        terms.add(f"city:{city.key}")
        terms.add(f"cn:{places.fold(city.name)}")
    for occupation in profile.occupations:
        code = occupation.isco_code.strip()
        terms.update(f"o:{code[:n]}" for n in range(1, min(len(code), 4) + 1))
    for skill in profile.skills:
        terms.add(f"s:{skill_key(skill.esco_uri, skill.label)}")
    for language in profile.languages:
        if language.strip():
            terms.add(f"l:{language.strip().lower()}")
    if profile.education:
        terms.add(f"e:{max(e.isced_level for e in profile.education)}")
    missions = profile.availability.mission_types
    terms.update(f"m:{m}" for m in missions)
    if missions:
        terms.add("m:any")
    if profile.availability.remote:
        terms.add("m:remote")
    return sorted(terms)


def _words(terms: Sequence[str]) -> set[str]:
    return {t[2:] for t in terms if t.startswith("n:")}


def _words_upsert() -> Any:
    statement = pg_insert(vocabulary)
    return statement.on_conflict_do_update(
        index_elements=[vocabulary.c.word],
        set_={"members": vocabulary.c.members + statement.excluded.members},
    )


# Run with many parameter sets (executemany): compiled once.
_UPSERT_WORDS = _words_upsert()
_DELETE_UNUSED_WORD = delete(vocabulary).where(
    vocabulary.c.word == bindparam("w"), vocabulary.c.members <= 0
)


async def _count_words(session: AsyncSession, delta: Counter[str]) -> None:
    changes = sorted((w, n) for w, n in delta.items() if n)
    if not changes:
        return
    await session.execute(_UPSERT_WORDS, [{"word": w, "members": n} for w, n in changes])
    gone = [w for w, n in changes if n < 0]
    if gone:
        # A word no member uses any more leaves the vocabulary (erasure leaves no name).
        await session.execute(_DELETE_UNUSED_WORD, [{"w": w} for w in gone])


async def index_member(
    session: AsyncSession, member_id: UUID, profile: MemberProfile, *, as_of: datetime
) -> bool:
    """Make the member findable as ``profile`` says (False for an older event)."""
    previous = (
        await session.execute(
            select(member_search.c.terms, member_search.c.as_of)
            .where(member_search.c.member_id == member_id)
            .with_for_update()
        )
    ).first()
    if previous is not None and previous.as_of > as_of:
        return False
    terms = terms_of(profile)
    levels = [e.isced_level for e in profile.education]
    row: dict[str, Any] = {
        "member_id": member_id,
        "embassy_id": profile.embassy_id,
        "country": profile.country_of_residence.upper(),
        "name_key": " ".join(name_words(profile.given_name, profile.family_name)),
        "terms": terms,
        "isced": max(levels) if levels else None,
        "available_from": profile.availability.available_from,
        "available_until": profile.availability.available_until,
        "as_of": as_of,
    }
    statement = pg_insert(member_search).values(**row)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[member_search.c.member_id],
            set_={k: statement.excluded[k] for k in row if k != "member_id"},
        )
    )
    delta: Counter[str] = Counter(_words(terms))
    if previous is not None:
        delta.subtract(_words(previous.terms))
    await _count_words(session, delta)
    return True


async def unindex_member(session: AsyncSession, member_id: UUID) -> None:
    """Remove the member from search (erased, or merged into another record)."""
    previous = (
        await session.execute(
            delete(member_search)
            .where(member_search.c.member_id == member_id)
            .returning(member_search.c.terms)
        )
    ).first()
    if previous is not None:
        delta: Counter[str] = Counter()
        delta.subtract(_words(previous.terms))
        await _count_words(session, delta)
