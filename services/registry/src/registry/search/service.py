"""Search for officers and coordinators: name (accents ignored, typos tolerated) and filters.

The search table (``member_search``) and the vocabulary of name words
(``name_words``) are read models kept by the ``registry-read-models`` consumer of
``registry-worker`` from the registry's own events, so a change shows up in search
once its event went through the outbox relay and the consumer (typically well
under a second; the consumer's lag is exported as a metric).

How a query runs:
1. Each word of the query is folded like the names (``registry.duplicates.normalise``:
   transliterated to ASCII, case folded) and expanded to the words of the vocabulary
   within its reach: trigram similarity (pg_trgm), Levenshtein distance 1 (2 for
   words of 7 letters or more), or a prefix of 3 letters or more.
2. One GIN index on ``terms`` then finds the members having, for every query word,
   one of its expansions, and every filter (``o:22``, ``c:FR``, ``l:fr``...), within the
   embassies the caller's policy decision reaches; ranked by trigram similarity of the
   whole folded name.
3. The page of ids goes through :func:`registry.members.reads.find_members`, the one read
   path of members: scope checked again on the members table, fields projected per
   row, every record received audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import Float, and_, bindparam, cast, func, literal, or_, select
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.types import Text

from diaspora_identity.audit import AccessContext, AuditTrail
from diaspora_identity.policy import Decision
from diaspora_reference import esco, places
from registry.duplicates.normalise import name_words
from registry.members.reads import MemberQuery, find_members
from registry.statistics.facts import skill_key
from registry.statistics.tables import member_search
from registry.statistics.tables import name_words as vocabulary

MAX_OFFSET = 1000
MAX_LIMIT = 100
# Trigram similarity at which a vocabulary word is taken for a query word.
WORD_SIMILARITY = 0.45
# The first cut through the trigram index is pg_trgm's `%` (similarity over
# pg_trgm.similarity_threshold, 0.3 by default), refined by Levenshtein distance.
MAX_EXPANSIONS = 50


# -- queries --------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchQuery:
    """What an officer searches for; every given criterion must hold."""

    text: str | None = None
    occupation: str | None = None
    skill: str | None = None
    education_min: int | None = None
    country: str | None = None
    embassy: str | None = None
    city: str | None = None
    language: str | None = None
    mission: str | None = None
    available_on: date | None = None
    offset: int = 0
    limit: int = 20


def _expansions(word: str) -> Any:
    """The vocabulary words a query word stands for (itself, near spellings, completions),
    as an SQL array of ``n:`` terms, evaluated inside the search statement."""
    distance = 1 if len(word) < 7 else 2
    near = and_(
        vocabulary.c.word.op("%")(word),
        or_(
            func.similarity(vocabulary.c.word, word) >= WORD_SIMILARITY,
            func.levenshtein(vocabulary.c.word, word) <= distance,
        ),
    )
    if len(word) >= 3:
        prefix = word.replace("\\", "").replace("%", "").replace("_", "")
        near = or_(near, vocabulary.c.word.like(prefix + "%"))
    found = (
        select(literal("n:") + vocabulary.c.word)
        .where(near)
        .order_by(func.similarity(vocabulary.c.word, word).desc(), vocabulary.c.word)
        .limit(MAX_EXPANSIONS)
    )
    return cast(func.array(found.scalar_subquery()), ARRAY(Text))


async def expand_word(session: AsyncSession, word: str) -> list[str]:
    """The vocabulary words a query word stands for (for tests and diagnostics)."""
    terms = (await session.execute(select(_expansions(word)))).scalar_one()
    return sorted(t[2:] for t in terms or [])


def _skill_terms(skill: str) -> list[str]:
    skill = skill.strip()
    if skill.startswith(esco.SKILL_PREFIX):
        return [f"s:{skill}"]
    keys = {f"s:{skill_key(None, skill)}"}
    keys.update(f"s:{s.uri}" for s in esco.find_skills(skill, "fr", limit=5))
    keys.update(f"s:{s.uri}" for s in esco.find_skills(skill, "en", limit=5))
    return sorted(keys)


def _city_terms(city: str, country: str | None) -> list[str]:
    city = city.strip()
    if city.isdigit():
        return [f"city:{city}"]
    if country:
        found = places.city(country, city)
        if found is not None:
            return [f"city:{found.geonames_id}", f"cn:{places.fold(city)}"]
    return [f"cn:{places.fold(city)}"]


def _terms_array(values: Sequence[str]) -> Any:
    return cast(array(list(values)), ARRAY(Text))


async def search_ids(
    session: AsyncSession, *, decision: Decision, query: SearchQuery
) -> list[UUID]:
    """Ids of the members matching ``query`` within the decision's scope, best first."""
    conditions: list[Any] = [
        decision.where({"embassy_id": member_search.c.embassy_id, "id": member_search.c.member_id})
    ]
    key = ""
    if query.text:
        words = name_words(query.text)
        key = " ".join(words)
        # One statement: each word's expansions are an array subquery (an InitPlan, run
        # once), and the GIN index on terms takes them as its keys.
        conditions += [member_search.c.terms.overlap(_expansions(word)) for word in words]
    required: list[str] = []
    if query.occupation:
        required.append(f"o:{query.occupation.strip()}")
    if query.country:
        required.append(f"c:{query.country.upper()}")
    if query.embassy:
        required.append(f"emb:{query.embassy}")
    if query.language:
        required.append(f"l:{query.language.strip().lower()}")
    if query.mission:
        required.append(f"m:{query.mission}")
    if required:
        conditions.append(member_search.c.terms.contains(_terms_array(required)))
    if query.skill:
        conditions.append(member_search.c.terms.overlap(_terms_array(_skill_terms(query.skill))))
    if query.city:
        conditions.append(
            member_search.c.terms.overlap(_terms_array(_city_terms(query.city, query.country)))
        )
    if query.education_min is not None:
        levels = [f"e:{n}" for n in range(query.education_min, 9)]
        conditions.append(member_search.c.terms.overlap(_terms_array(levels)))
    if query.available_on is not None:
        conditions.append(
            and_(
                or_(
                    member_search.c.available_from.is_(None),
                    member_search.c.available_from <= query.available_on,
                ),
                or_(
                    member_search.c.available_until.is_(None),
                    member_search.c.available_until >= query.available_on,
                ),
            )
        )
    rank = (
        func.similarity(member_search.c.name_key, bindparam("key", key, type_=Text))
        if key
        else literal(0.0, Float)
    )
    statement = (
        select(member_search.c.member_id)
        .where(*conditions)
        .order_by(rank.desc(), member_search.c.member_id)
        .offset(min(query.offset, MAX_OFFSET))
        .limit(min(query.limit, MAX_LIMIT + 1))
    )
    return [row.member_id for row in (await session.execute(statement)).all()]


async def search_members(
    *,
    sessions: async_sessionmaker[AsyncSession],
    audit: AuditTrail,
    decision: Decision,
    context: AccessContext,
    query: SearchQuery,
) -> tuple[list[dict[str, Any]], bool]:
    """One page of matching members, best first, as :func:`find_members` shows them (and
    audits them), and whether more follow."""
    limit = min(query.limit, MAX_LIMIT)
    async with sessions() as session, session.begin():
        ids = await search_ids(session, decision=decision, query=replace(query, limit=limit + 1))
    more = len(ids) > limit
    ids = ids[:limit]
    if not ids:
        return [], False
    found = await find_members(
        sessions=sessions,
        audit=audit,
        decision=decision,
        context=context,
        query=MemberQuery(member_ids=tuple(ids), limit=None),
    )
    position = {member_id: i for i, member_id in enumerate(ids)}
    found.sort(key=lambda m: position.get(m.get("id"), len(ids)))  # type: ignore[arg-type]
    return found, more
