"""Ranking of experts for a need: hard filters, then a score that PostgreSQL computes.

Hard filters (an expert failing one is no candidate at all):
- consent to be contacted for missions (only such members are in ``experts``);
- availability for the need's type (``mission_types``), for its whole period
  (``available_from``/``available_until``), and remotely when the need is remote;
- every language the need requires;
- the minimum ISCED level, when the need sets one.

The score (0 to 100) is a weighted sum of components in [0, 1]:

=============  ======  ==============================================================
component      weight  value
=============  ======  ==============================================================
occupation     0.35    1 same ISCO code or group sought (declared or worked in),
                       0.6 same minor group (3 digits), 0.3 same sub-major group (2)
skills         0.30    mean over the skills sought: 1 the same ESCO skill, 0.7 the
                       skill's words in the expert's skills, titles or fields (full
                       text, French and English stemming), 0.6 a close spelling
                       (pg_trgm word similarity >= 0.5), else 0
experience     0.15    years in jobs of the sought minor groups, capped at 10, / 10
text           0.12    full-text rank of the need's title and description against the
                       expert's document (``websearch_to_tsquery``, ``ts_rank``),
                       saturating: rank / (rank + 0.1)
education      0.08    highest ISCED level / 8
=============  ======  ==============================================================

When a need seeks no occupation or no skill, that component's weight is shared out
among the others. Only experts with some evidence of fit are ranked (an occupation
group, a skill, or words in common): "retrieval", which the indexes of ``experts``
serve; ``exhaustive=True`` scores every expert passing the hard filters instead (the
benchmark's reference). No sentence embeddings: see docs/matching.md.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from sqlalchemy import Text, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_reference import esco, isco
from matching.experts.projection import FTS_CONFIGS

WEIGHTS: Final[dict[str, float]] = {
    "occupation": 0.35,
    "skills": 0.30,
    "experience": 0.15,
    "text": 0.12,
    "education": 0.08,
}
OCCUPATION_LEVELS: Final[dict[str, float]] = {"exact": 1.0, "minor": 0.6, "sub_major": 0.3}
SKILL_EXACT, SKILL_WORDS, SKILL_SPELLING = 1.0, 0.7, 0.6
TRIGRAM_THRESHOLD: Final = 0.5
EXPERIENCE_CAP_YEARS: Final = 10
TEXT_HALF: Final = 0.1
MAX_QUERY_WORDS: Final = 40
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)


@dataclass(frozen=True)
class SkillQuery:
    label: str
    esco_uri: str | None
    # The words searched for: the label, and for an ESCO skill its French and English labels.
    words: tuple[str, ...]


@dataclass(frozen=True)
class NeedQuery:
    """What the ranking reads of a need."""

    type: str
    occupations: tuple[str, ...] = ()
    skills: tuple[SkillQuery, ...] = ()
    languages: tuple[str, ...] = ()
    min_isced_level: int | None = None
    starts_on: date | None = None
    ends_on: date | None = None
    work_mode: str = "on_site"
    title: str = ""
    description: str = ""

    @classmethod
    def of(cls, need: dict[str, Any]) -> NeedQuery:
        skills = []
        for s in need.get("skills") or []:
            words = [s["label"]]
            if s.get("esco_uri"):
                known = esco.skill(s["esco_uri"])
                if known is not None:
                    words += [known.label("fr"), known.label("en")]
            skills.append(
                SkillQuery(
                    label=s["label"],
                    esco_uri=s.get("esco_uri"),
                    words=tuple(dict.fromkeys(w for w in words if w)),
                )
            )
        return cls(
            type=need["type"],
            occupations=tuple(need.get("occupations") or ()),
            skills=tuple(skills),
            languages=tuple(need.get("languages") or ()),
            min_isced_level=need.get("min_isced_level"),
            starts_on=need.get("starts_on"),
            ends_on=need.get("ends_on"),
            work_mode=need.get("work_mode") or "on_site",
            title=need.get("title") or "",
            description=need.get("description") or "",
        )


@dataclass
class Candidate:
    """One ranked expert: the row, the components and the score (0 to 100)."""

    member_id: Any
    score: float
    components: dict[str, float]
    expert: dict[str, Any]
    skill_hits: list[float]
    experience_years: float
    matched_terms: list[str] = field(default_factory=list)


def _fold(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def query_words(*texts: str) -> str:
    """A ``websearch_to_tsquery`` text matching any of the texts' words."""
    words: list[str] = []
    for value in texts:
        for word in _WORD.findall(_fold(value)):
            if word not in words:
                words.append(word)
    return " or ".join(words[:MAX_QUERY_WORDS])


def _occupation_sets(codes: tuple[str, ...]) -> dict[str, list[str]]:
    units, minors, submajors, near_minors, near_submajors = set(), set(), set(), set(), set()
    related3, related2 = set(), set()
    for code in codes:
        if len(code) == 4:
            units.add(code)
        elif len(code) == 3:
            minors.add(code)
        elif len(code) == 2:
            submajors.add(code)
        elif len(code) == 1:
            submajors.update(g.code for g in isco.children(code))
        if len(code) == 4:
            near_minors.add(code[:3])
        if len(code) >= 3:
            near_submajors.add(code[:2])
            related3.add(code[:3])
        elif len(code) == 2:
            related2.add(code)
        else:
            related2.update(g.code for g in isco.children(code))
    return {
        "units": sorted(units),
        "minors": sorted(minors),
        "submajors": sorted(submajors),
        "near_minors": sorted(near_minors),
        "near_submajors": sorted(near_submajors),
        "related3": sorted(related3),
        "related2": sorted(related2),
    }


def _tsquery(param: str) -> str:
    """SQL of a full-text query given as a parameter (compiled by :func:`compile_queries`).

    A constant, not a function call: PostgreSQL evaluates ``unaccent`` (stable, not
    immutable) once per row otherwise, and cannot use the GIN index of ``search``."""
    return f"CAST(:{param} AS tsquery)"


async def compile_queries(session: AsyncSession, texts: dict[str, str]) -> dict[str, str]:
    """``websearch_to_tsquery`` of each text in every configuration of the experts'
    documents (unaccented), OR-ed, as tsquery text; one round trip for all."""
    if not texts:
        return {}
    names = sorted(texts)
    columns = ", ".join(
        "("
        + " || ".join(
            f"websearch_to_tsquery('{cfg}'::regconfig, unaccent(:t{i}))" for cfg in FTS_CONFIGS
        )
        + f")::text AS q{i}"
        for i in range(len(names))
    )
    row = (
        await session.execute(
            text(f"SELECT {columns}"),
            {f"t{i}": texts[name] for i, name in enumerate(names)},
        )
    ).one()
    return {name: row[i] for i, name in enumerate(names)}


def build_query(
    need: NeedQuery,
    *,
    limit: int,
    today: date,
    exhaustive: bool = False,
    only: list[Any] | None = None,
    weights: dict[str, float] | None = None,
) -> tuple[Any, dict[str, Any], dict[str, str]]:
    """The SQL statement ranking experts for ``need``, its parameters, and the texts
    of its full-text queries (parameters to fill with :func:`compile_queries`)."""
    sets = _occupation_sets(need.occupations)
    params: dict[str, Any] = {
        "type": need.type,
        "languages": list(need.languages),
        "limit": limit,
        **sets,
    }
    array_params = [*sets, "languages"]
    filters = [":type = ANY(e.mission_types)", "e.languages @> :languages"]
    if only is not None:
        filters.append("e.member_id = ANY(:only)")
        params["only"] = only
    if need.min_isced_level is not None:
        filters.append("e.max_isced_level >= :min_isced")
        params["min_isced"] = need.min_isced_level
    period_start = need.starts_on or today
    period_end = need.ends_on or need.starts_on or today
    params["period_start"], params["period_end"] = period_start, period_end
    filters.append("(e.available_from IS NULL OR e.available_from <= :period_start)")
    filters.append("(e.available_until IS NULL OR e.available_until >= :period_end)")
    if need.work_mode == "remote":
        filters.append("e.remote")

    weights = dict(WEIGHTS if weights is None else weights)
    if not need.occupations:
        weights.pop("occupation", None)
        weights.pop("experience", None)
    if not need.skills:
        weights.pop("skills", None)
    text_query = query_words(need.title, need.description)
    if not text_query:
        weights.pop("text", None)
    total = sum(weights.values()) or 1.0
    texts: dict[str, str] = {"text_query": text_query}

    occupation = (
        "CASE WHEN e.isco_units && :units OR e.isco_minors && :minors "
        "OR e.isco_submajors && :submajors THEN 1.0 "
        f"WHEN e.isco_minors && :near_minors THEN {OCCUPATION_LEVELS['minor']} "
        f"WHEN e.isco_submajors && :near_submajors THEN {OCCUPATION_LEVELS['sub_major']} "
        "ELSE 0.0 END"
    )
    experience = (
        "(SELECT coalesce(sum(y.value::numeric), 0) FROM jsonb_each_text(e.experience_years) y "
        "WHERE left(y.key, 3) = ANY(:related3) OR left(y.key, 2) = ANY(:related2))"
    )
    hits = []
    retrieval = [
        "e.isco_units && :units",
        "e.isco_minors && (:minors || :near_minors)",
        "e.isco_submajors && (:submajors || :near_submajors)",
    ]
    uris = [s.esco_uri for s in need.skills if s.esco_uri]
    if uris:
        params["skill_uris"] = uris
        array_params.append("skill_uris")
        retrieval.append("e.skill_uris && :skill_uris")
    for i, skill in enumerate(need.skills):
        words = " or ".join(
            " ".join(_WORD.findall(_fold(w))) for w in skill.words if _WORD.search(_fold(w))
        )
        texts[f"skill_words_{i}"] = words
        params[f"skill_label_{i}"] = _fold(skill.label)
        exact = (
            f"WHEN :skill_uri_{i} = ANY(e.skill_uris) THEN {SKILL_EXACT} " if skill.esco_uri else ""
        )
        if skill.esco_uri:
            params[f"skill_uri_{i}"] = skill.esco_uri
        hits.append(
            f"CASE {exact}"
            f"WHEN e.search @@ {_tsquery(f'skill_words_{i}')} THEN {SKILL_WORDS} "
            f"WHEN word_similarity(:skill_label_{i}, e.search_text) >= {TRIGRAM_THRESHOLD} "
            f"THEN {SKILL_SPELLING} ELSE 0.0 END"
        )
        retrieval.append(f"e.search @@ {_tsquery(f'skill_words_{i}')}")
        retrieval.append(f":skill_label_{i} <% e.search_text")
    if text_query:
        retrieval.append(f"e.search @@ {_tsquery('text_query')}")
    skill_hits = f"ARRAY[{', '.join(hits)}]::float8[]" if hits else "ARRAY[]::float8[]"
    text_rank = f"ts_rank(e.search, {_tsquery('text_query')})" if text_query else "0.0::float4"
    where = " AND ".join(filters)
    if not exhaustive:
        where += " AND (" + " OR ".join(retrieval) + ")"

    def weighted(name: str, expression: str) -> str:
        return f"{weights[name] / total:.6f} * ({expression})" if name in weights else "0"

    # Only constants and parameter names are formatted into the SQL; every value the
    # need brings (codes, words, dates) is a bound parameter.
    sql = f"""
WITH scored AS (
  SELECT e.*,
         ({occupation})::float8 AS c_occupation,
         {skill_hits} AS skill_hits,
         ({experience})::float8 AS years,
         ({text_rank})::float8 AS text_rank
  FROM experts e
  WHERE {where}
), components AS (
  SELECT s.*,
         CASE WHEN cardinality(s.skill_hits) = 0 THEN 0.0
              ELSE (SELECT avg(h) FROM unnest(s.skill_hits) h) END AS c_skills,
         least(s.years, {EXPERIENCE_CAP_YEARS})::float8 / {EXPERIENCE_CAP_YEARS} AS c_experience,
         s.text_rank / (s.text_rank + {TEXT_HALF}) AS c_text,
         coalesce(s.max_isced_level, 0)::float8 / 8 AS c_education
  FROM scored s
)
SELECT c.*,
       round((100 * (
         {weighted("occupation", "c.c_occupation")}
         + {weighted("skills", "c.c_skills")}
         + {weighted("experience", "c.c_experience")}
         + {weighted("text", "c.c_text")}
         + {weighted("education", "c.c_education")}
       ))::numeric, 2)::float8 AS score
FROM components c
ORDER BY score DESC, c.member_id
LIMIT :limit
"""  # noqa: S608
    # Exhaustive scoring leaves the retrieval's parameters out of the statement.
    used = [name for name in array_params if re.search(rf":{name}\b", sql)]
    statement = text(sql).bindparams(*(bindparam(name, type_=ARRAY(Text)) for name in used))
    params = {k: v for k, v in params.items() if re.search(rf":{k}\b", sql)}
    texts = {k: v for k, v in texts.items() if re.search(rf":{k}\b", sql)}
    return statement, params, texts


async def rank(
    session: AsyncSession,
    need: NeedQuery,
    *,
    limit: int = 20,
    today: date | None = None,
    exhaustive: bool = False,
    only: list[Any] | None = None,
    weights: dict[str, float] | None = None,
) -> list[Candidate]:
    """The best ``limit`` experts for the need, best first (among ``only`` if given)."""
    statement, params, texts = build_query(
        need,
        limit=limit,
        today=today or date.today(),
        exhaustive=exhaustive,
        only=only,
        weights=weights,
    )
    params.update(await compile_queries(session, texts))
    found = (await session.execute(statement, params)).mappings().all()
    candidates = [
        Candidate(
            member_id=row["member_id"],
            score=float(row["score"]),
            components={
                "occupation": float(row["c_occupation"]),
                "skills": float(row["c_skills"]),
                "experience": float(row["c_experience"]),
                "text": float(row["c_text"]),
                "education": float(row["c_education"]),
            },
            expert=dict(row),
            skill_hits=[float(h) for h in row["skill_hits"]],
            experience_years=float(row["years"]),
        )
        for row in found
    ]
    if candidates and need.title + need.description:
        await _matched_terms(session, need, candidates)
    return candidates


async def _matched_terms(session: AsyncSession, need: NeedQuery, found: list[Candidate]) -> None:
    """The words (stems) the need's text and each expert's document share."""
    document = " || ".join(
        f"to_tsvector('{cfg}'::regconfig, unaccent(:need_text))" for cfg in FTS_CONFIGS
    )
    lexemes = (
        await session.execute(
            text(f"SELECT tsvector_to_array({document})"),
            {"need_text": f"{need.title} {need.description}"},
        )
    ).scalar_one()
    statement = text(
        """
SELECT e.member_id,
       ARRAY(SELECT l FROM unnest(tsvector_to_array(e.search)) l
             WHERE l = ANY(:lexemes) ORDER BY l) AS terms
FROM experts e WHERE e.member_id = ANY(:ids)
"""
    ).bindparams(bindparam("lexemes", type_=ARRAY(Text)))
    rows = await session.execute(
        statement, {"lexemes": list(lexemes), "ids": [c.member_id for c in found]}
    )
    terms = {r[0]: list(r[1]) for r in rows}
    for candidate in found:
        candidate.matched_terms = terms.get(candidate.member_id, [])
