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
                       skill's words (its ESCO labels too) in the expert's skills,
                       titles or fields (full text, French and English stemming)
experience     0.15    years in jobs of the sought minor groups, capped at 10, / 10
text           0.12    full-text rank of the need's title and description (their
                       words but the stop words of either language) against the
                       expert's document (``websearch_to_tsquery``, ``ts_rank``),
                       saturating: rank / (rank + 0.1); at most 0.5 (see below)
education      0.08    highest ISCED level / 8
=============  ======  ==============================================================

When a need seeks no occupation or no skill, that component's weight is shared out
among the others. The candidates are the experts who pass the hard filters and show
some evidence of fit: an ISCO group in common, a skill sought, or words of the need
in their document. Experts without any would score on education alone.

Finding the best ``limit`` of them without scoring them all (``rank``) is exact by
construction, a threshold algorithm over the indexes of ``experts``:

1. *seeds*: samples of the strongest evidence (the groups sought with a skill, the
   groups, two skills, a skill with a master's or more...) are scored until
   ``limit`` experts are; the ``limit``-th best score ``theta`` is a lower bound of
   the final ``limit``-th score;
2. :meth:`Evidence.retrieval` writes the condition met by every expert who could
   still reach ``theta``, from the highest score each kind of evidence allows
   (:meth:`Evidence.patterns`): outside the groups sought, occupation and experience
   bring nothing (years only count in the minor groups sought, which put the expert
   at level 0.6 at least); a skill at most 1 (0.7 without an ESCO URI); with the
   documents' default weight, each of the query's Q distinct words an expert has
   brings less than 0.1 / Q to ``ts_rank`` (capped at 0.1 anyway), so m of them keep
   the text component below m / (m + Q); education exactly what the ISCED level
   gives. The groups, the skills, a doctorate and, when nothing else can, "m words
   of the text or more" (one tsquery of their combinations) drive the index scans;
3. each row fetched that passes the hard filters has its components evaluated once,
   and is kept only if they, with experience at its highest, reach ``theta`` (the
   patterns are only what the indexes can look up; this bound is exact but for the
   experience); the rows kept are scored and the best ``limit`` returned.

The GIN indexes are partial, one per need type (and per need type for remote work):
every ranking query names its type as a constant, so PostgreSQL reads only the
experts willing to do that kind of mission (about 38% of them; 15% for remote needs)
instead of fetching everyone's row to reject most of them.

``exhaustive=True`` scores every candidate instead (the benchmark's reference).
No sentence embeddings: see docs/matching.md.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from sqlalchemy import Text, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_reference import esco, isco
from matching.experts.projection import FTS_CONFIGS
from matching.needs.domain import NEED_TYPES

WEIGHTS: Final[dict[str, float]] = {
    "occupation": 0.35,
    "skills": 0.30,
    "experience": 0.15,
    "text": 0.12,
    "education": 0.08,
}
OCCUPATION_LEVELS: Final[dict[str, float]] = {"exact": 1.0, "minor": 0.6, "sub_major": 0.3}
SKILL_EXACT, SKILL_WORDS = 1.0, 0.7
EXPERIENCE_CAP_YEARS: Final = 10
TEXT_HALF: Final = 0.1
# ts_rank never exceeds 0.1 with the documents' default weight (D): capping it there
# changes no score and makes the text component's bound (0.5) hold by construction.
TEXT_RANK_CAP: Final = 0.1
TEXT_MAX: Final = TEXT_RANK_CAP / (TEXT_RANK_CAP + TEXT_HALF)
# How many experts of the strongest evidence are scored to find the first threshold.
SEED_SAMPLE: Final = 400
# Beyond this many combinations, "at least m words of the text" is written for fewer.
MAX_TERM_COMBINATIONS: Final = 200
# The ISCED level few enough experts reach (8: doctorate, about 3%) to be worth reading
# from its index and intersecting with the per-type GIN indexes' rows (7 and up, some
# 15%, cost more to read than the rows they spare).
SELECTIVE_ISCED: Final = 8
# A master's or more: the education of the strongest seeds.
MASTERS: Final = 7
MAX_QUERY_WORDS: Final = 40
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
_LEXEME = re.compile(r"'(?:[^']|'')*'")  # a quoted lexeme in a tsquery's text


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
    # No word that either language drops as a stop word (French "des", "le" are words to
    # the English configuration, and in nearly every document: the index would read
    # their posting lists for nothing). The texts are groups of words joined by " or ".
    content = " AND ".join(f"ts_lexize('{cfg}_stem', w) <> '{{}}'" for cfg in FTS_CONFIGS)

    def words(i: int) -> str:
        # Constants only are formatted in; the text is a parameter.
        return (
            "(SELECT coalesce(string_agg(g, ' or '), '') FROM ("  # noqa: S608
            "SELECT (SELECT string_agg(w, ' ') FROM unnest(string_to_array(grp, ' ')) w "
            f"WHERE {content}) AS g FROM unnest(string_to_array(:t{i}, ' or ')) grp) s "
            "WHERE g IS NOT NULL)"
        )

    columns = ", ".join(
        "("
        + " || ".join(
            f"websearch_to_tsquery('{cfg}'::regconfig, unaccent({words(i)}))" for cfg in FTS_CONFIGS
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


@dataclass(frozen=True)
class Points:
    """The points (out of 100) each component can bring to a need's score: its weight,
    shared out over the components that apply to the need."""

    occupation: float = 0.0
    skills: float = 0.0
    experience: float = 0.0
    text: float = 0.0
    education: float = 0.0

    @classmethod
    def of(cls, need: NeedQuery, weights: dict[str, float] | None = None) -> Points:
        applicable = dict(WEIGHTS if weights is None else weights)
        if not need.occupations:
            applicable.pop("occupation", None)
            applicable.pop("experience", None)
        if not need.skills:
            applicable.pop("skills", None)
        if not query_words(need.title, need.description):
            applicable.pop("text", None)
        total = sum(applicable.values()) or 1.0
        return cls(**{name: 100 * w / total for name, w in applicable.items()})


@dataclass(frozen=True)
class Match:
    """A condition on one column of ``experts e``: array overlap or full-text match.

    Written ``indexed``, PostgreSQL may answer it from the column's GIN index; written
    as a plain function call, it can only filter rows fetched for other reasons (the
    ranking chooses which conditions drive the index scans)."""

    column: str
    value: str  # SQL of the value: an array parameter or a tsquery
    fulltext: bool = False

    def sql(self, *, indexed: bool) -> str:
        if self.fulltext:
            if indexed:
                return f"e.{self.column} @@ {self.value}"
            return f"ts_match_vq(e.{self.column}, {self.value})"
        if indexed:
            return f"e.{self.column} && {self.value}"
        return f"arrayoverlap(e.{self.column}, {self.value})"


def _any(matches: Sequence[Match]) -> str:
    """Any of the matches, written for the indexes."""
    return "(" + (" OR ".join(m.sql(indexed=True) for m in matches) or "FALSE") + ")"


@dataclass(frozen=True)
class SkillEvidence:
    """One skill sought: its ESCO URI among the expert's (a hit worth 1), its words in
    the expert's skills (worth 0.7)."""

    exact: Match | None
    words: Match | None

    @property
    def ceiling(self) -> float:
        return SKILL_EXACT if self.exact else SKILL_WORDS

    def hit(self, *, exact_only: bool = False) -> str:
        found = [self.exact] if exact_only else [self.exact, self.words]
        return _any([m for m in found if m is not None])


@dataclass(frozen=True)
class Pattern:
    """Evidence an expert may show: an occupation level (and its groups), ``skills``
    skills sought hit (``exact``: by ESCO URI), ``text`` words of the need's text (at
    least), and the lowest ISCED level that lets such an expert reach the threshold."""

    level: float
    group: tuple[Match, ...]
    skills: int
    exact: bool
    text: int
    isced: int

    def covers(self, other: Pattern) -> bool:
        """Every expert showing ``other`` shows this too (so ``other`` adds nobody)."""
        if self.group != other.group or self.isced > other.isced or self.text > other.text:
            return False
        if self.skills == 0:
            return True
        if self.skills == 1 and not self.exact:
            return other.skills >= 1
        if self.skills == 1:
            return other.skills == 1 and other.exact
        return other.skills >= self.skills


@dataclass(frozen=True)
class Evidence:
    """The kinds of evidence of fit a need allows, and the conditions finding them."""

    # (occupation level, groups): the groups sought (1), their minor groups (0.6),
    # their sub-major groups (0.3); only the levels the need's codes have.
    levels: tuple[tuple[float, tuple[Match, ...]], ...]
    skills: tuple[SkillEvidence, ...]  # one per skill sought
    text: Match | None  # any word of the need's title or description
    # The distinct words (lexemes, quoted) of the compiled text query, once known: an
    # expert with m of these has a text component below m / (m + len(terms)).
    terms: tuple[str, ...] = ()

    def text_value(self, matched: int) -> float:
        """The highest text component with ``matched`` of the query's words."""
        if not self.terms:
            return TEXT_MAX if matched else 0.0
        return min(TEXT_MAX, matched / (matched + len(self.terms)))

    def term_queries(self) -> dict[str, str]:
        """``text_terms_<m>``: tsquery texts matching documents with m words or more
        of the text query, for each m their combinations keep short enough."""
        found = {}
        for m in range(2, len(self.terms) + 1):
            if math.comb(len(self.terms), m) > MAX_TERM_COMBINATIONS:
                break
            found[f"text_terms_{m}"] = " | ".join(
                "(" + " & ".join(c) + ")" for c in itertools.combinations(self.terms, m)
            )
        return found

    def _text(self, matched: int) -> str:
        """At least ``matched`` words of the text (fewer when their combinations are too
        many to write: a wider condition, still a correct one)."""
        assert self.text is not None
        usable = 1
        for m in range(2, matched + 1):
            if math.comb(len(self.terms), m) > MAX_TERM_COMBINATIONS:
                break
            usable = m
        if usable == 1:
            return self.text.sql(indexed=True)
        return Match("search", _tsquery(f"text_terms_{usable}"), fulltext=True).sql(indexed=True)

    def patterns(self, points: Points, reach: float) -> list[Pattern]:
        """The least evidence, per level, with which an expert can still score
        ``reach``: any expert who can shows one of these."""
        per_skill = points.skills / len(self.skills) if self.skills else 0.0
        ceilings = sorted((s.ceiling for s in self.skills), reverse=True)
        most = (len(self.terms) or 1) if self.text else 0
        found: list[Pattern] = []
        for level, group in (*self.levels, (0.0, ())):
            # Experience counts only jobs in the minor groups sought, which put the
            # expert at level 0.6 or more: below, it brings nothing.
            base = points.occupation * level + (points.experience if level >= 0.6 else 0.0)
            options = [(0, False, 0.0)] + [
                (m, False, sum(ceilings[:m])) for m in range(1, len(ceilings) + 1)
            ]
            if ceilings and ceilings[0] == SKILL_EXACT:
                # One skill hit by its URI is worth more than one hit by words.
                options[1:2] = [(1, True, SKILL_EXACT), (1, False, SKILL_WORDS)]
            candidates = []
            for skills, exact, value in options:
                lowest = 9
                for matched in range(most + 1):
                    if not group and skills == 0 and not matched:
                        continue  # no evidence at all: not a candidate
                    top = base + per_skill * value + points.text * self.text_value(matched)
                    if top + points.education < reach:
                        continue
                    short = reach - top
                    isced = 0
                    if short > 0 and points.education > 0:
                        isced = max(0, math.ceil(8 * short / points.education - 1e-9))
                    if isced < lowest:  # more words only help if they ask less education
                        candidates.append(Pattern(level, group, skills, exact, matched, isced))
                        lowest = isced
                    if isced == 0:
                        break
            # Drop what another pattern covers (of two equal ones, the second).
            found += [
                p
                for i, p in enumerate(candidates)
                if not any(
                    j != i and q.covers(p) and (j < i or not p.covers(q))
                    for j, q in enumerate(candidates)
                )
            ]
        return found

    def _skills(self, count: int, *, exact: bool) -> str:
        """At least ``count`` of the skills sought hit (``exact``: by their ESCO URIs,
        small GIN lookups, so only the skills that have one); "" when fewer can be."""
        hits = [s.hit(exact_only=exact) for s in self.skills if s.exact or not exact]
        if len(hits) < count:
            return ""
        if count == 1:
            return "(" + " OR ".join(hits) + ")"
        combinations = itertools.combinations(hits, count)
        return "(" + " OR ".join("(" + " AND ".join(c) + ")" for c in combinations) + ")"

    def condition(self, pattern: Pattern) -> str:
        """The experts showing ``pattern``, written for the GIN indexes."""
        parts = []
        if pattern.isced:
            parts.append(f"e.max_isced_level >= {pattern.isced}")
        if pattern.group:
            parts.append(_any(pattern.group))
        if pattern.skills:
            parts.append(self._skills(pattern.skills, exact=pattern.exact))
        if pattern.text and self.text:
            parts.append(self._text(pattern.text))
        return " AND ".join(parts) or "TRUE"

    def retrieval(self, points: Points, reach: float | None = None) -> str:
        """The condition, for the GIN indexes, met by every candidate who can score
        ``reach`` or more (every candidate, with evidence of some kind, when ``reach`` is
        None): per pattern, its groups, the fewest skills hit, and its education level
        when few reach it; minus what another pattern covers. Most rows it fetches
        cannot reach ``reach``: the statement's bound (:meth:`Plan.statement`) drops
        them after one evaluation of each component per row. The need's words (long
        posting lists: they are many and common) only drive the scan where nothing else
        can."""
        patterns = self.patterns(points, -1.0 if reach is None else reach)
        if not patterns:
            return "FALSE"
        wanted = [
            dataclasses.replace(
                p,
                text=p.text if not p.group and not p.skills else 0,
                isced=p.isced if p.isced >= SELECTIVE_ISCED else 0,
            )
            for p in patterns
        ]
        fetched = [
            self.condition(p)
            for i, p in enumerate(wanted)
            if not any(
                j != i and q.covers(p) and (j < i or not p.covers(q)) for j, q in enumerate(wanted)
            )
        ]
        return " OR ".join(f"({c})" for c in dict.fromkeys(fetched))

    def seeds(self, points: Points) -> list[str]:
        """Conditions to sample a first threshold from, strongest evidence first: the
        groups sought with a skill, the groups; two skills, a skill by its URI with a
        master's or more, a skill with one, a skill; the last is every candidate.

        Skills are looked up by their ESCO URIs first (the strongest hit, and cheap to
        find); by their words too only when that found too few experts."""
        found = []
        educated = f"(e.max_isced_level + 0) >= {MASTERS}"
        for by_uri in (True, False):
            if by_uri and not any(s.exact for s in self.skills):
                continue

            def skills(count: int, *, by_uri: bool = by_uri) -> str:
                return self._skills(count, exact=by_uri)

            if self.levels:
                top = _any(self.levels[0][1])
                if self.skills and skills(1):
                    found.append(f"{top} AND {skills(1)}")
                found.append(top)
            if self.skills:
                if len(self.skills) > 1 and skills(2):
                    found.append(skills(2))
                if skills(1):
                    found.append(f"{skills(1)} AND {educated}")
                    found.append(skills(1))
        found.append(self.retrieval(points))
        return list(dict.fromkeys(found))


@dataclass
class Plan:
    """A need's ranking, ready to run: its hard filters, components and evidence as SQL,
    and their parameters (the full-text queries' texts still to compile)."""

    need: NeedQuery
    points: Points
    evidence: Evidence
    filters: str
    expressions: dict[str, str]
    # One expression per skill sought: its hit (1 by ESCO URI, 0.7 by words, 0).
    skill_hits: tuple[str, ...]
    # (condition, level) of the occupation component, first met first.
    occupation_levels: tuple[tuple[str, float], ...]
    params: dict[str, Any]
    array_params: list[str]
    texts: dict[str, str]

    def statement(
        self,
        *,
        limit: int,
        condition: str | None,
        sample: int | None = None,
        reach: float | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """The statement scoring the experts who pass the filters and meet ``condition``
        (None: no other condition), best ``limit`` first; ``sample``: only that many of
        them, any of them; ``reach``: only those whose score can be ``reach`` or more.
        Returns it with its parameters."""
        where = self.filters if condition is None else f"{self.filters} AND ({condition})"
        if reach is not None:
            where += f" AND {self._highest()} >= :reach"
        x = self.expressions
        points = self.points
        n = len(self.skill_hits)
        skills = " + ".join(f"e.skill_hits[{i}]" for i in range(1, n + 1))
        experience = f"least(c.years, {EXPERIENCE_CAP_YEARS})::float8 / {EXPERIENCE_CAP_YEARS}"

        def weighted(value: float, sql: str) -> str:
            return f"{value / 100:.6f} * ({sql})" if value else "0"

        # Only constants and parameter names are formatted into the SQL; every value the
        # need brings (codes, words, dates) is a bound parameter.
        sql = f"""
WITH scored AS (
  SELECT e.*,
         ({x["occupation"]})::float8 AS c_occupation,
         ARRAY[{", ".join(self.skill_hits)}]::float8[] AS skill_hits,
         ({x["text_rank"]})::float8 AS text_rank
  FROM experts e
  WHERE {where}
  {"LIMIT :sample" if sample is not None else ""}
), components AS (
  SELECT e.*,
         {f"({skills}) / {n}" if n else "0.0"}::float8 AS c_skills,
         ({x["experience"]})::float8 AS years,
         e.text_rank / (e.text_rank + {TEXT_HALF}) AS c_text,
         coalesce(e.max_isced_level, 0)::float8 / 8 AS c_education
  FROM scored e
)
SELECT c.*,
       {experience} AS c_experience,
       round((100 * (
         {weighted(points.occupation, "c.c_occupation")}
         + {weighted(points.skills, "c.c_skills")}
         + {weighted(points.experience, experience)}
         + {weighted(points.text, "c.c_text")}
         + {weighted(points.education, "c.c_education")}
       ))::numeric, 2)::float8 AS score
FROM components c
ORDER BY score DESC, c.member_id
LIMIT :limit
"""  # noqa: S608
        params = {**self.params, "limit": limit, "sample": sample, "reach": reach}
        used = [name for name in self.array_params if re.search(rf":{name}\b", sql)]
        statement = text(sql).bindparams(*(bindparam(name, type_=ARRAY(Text)) for name in used))
        return statement, {k: v for k, v in params.items() if re.search(rf":{k}\b", sql)}

    def _highest(self) -> str:
        """SQL of the highest score (0 to 100) an expert of ``experts e`` can have: every
        component as the score computes it, but the experience, at its highest for
        experts in the groups sought (the only ones it counts for), not read. Each
        component's expression appears once: PostgreSQL evaluates this filter once per
        row, and the select list only for the rows that pass it."""
        points, x = self.points, self.expressions
        parts = []
        # The occupation level and what it lets experience bring, in one CASE.
        levels = []
        for when, level in self.occupation_levels:
            most = points.occupation * level
            if level >= OCCUPATION_LEVELS["minor"]:
                most += points.experience
            levels.append(f"WHEN {when} THEN {most:.6f}")
        if levels:
            parts.append(f"CASE {' '.join(levels)} ELSE 0.0 END")
        if points.skills and self.skill_hits:
            total = " + ".join(f"({hit})" for hit in self.skill_hits)
            parts.append(f"{points.skills / len(self.skill_hits):.6f} * ({total})")
        if points.text:
            # rank / (rank + h) written 1 - h / (rank + h): ts_rank once per row.
            parts.append(
                f"{points.text:.6f} * (1 - {TEXT_HALF} / (({x['text_rank']}) + {TEXT_HALF}))"
            )
        if points.education:
            parts.append(f"{points.education / 8:.6f} * coalesce(e.max_isced_level, 0)")
        return "(" + (" + ".join(parts) or "0") + ")"


def plan(
    need: NeedQuery,
    *,
    today: date,
    only: list[Any] | None = None,
    weights: dict[str, float] | None = None,
) -> Plan:
    """How to rank experts for ``need`` (among ``only`` if given)."""
    sets = _occupation_sets(need.occupations)
    if need.type not in NEED_TYPES:
        raise ValueError(f"unknown need type {need.type!r}")
    params: dict[str, Any] = {"languages": list(need.languages), **sets}
    array_params = [*sets, "languages"]
    # The type written as a constant (one of NEED_TYPES, checked above), not a parameter:
    # the ranking's GIN indexes are per type (partial indexes), and PostgreSQL only uses
    # one whose condition the query's own text implies.
    filters = [f"'{need.type}' = ANY(e.mission_types)", "e.languages @> :languages"]
    if only is not None:
        filters.append("e.member_id = ANY(:only)")
        params["only"] = only
    if need.min_isced_level is not None:
        # "+ 0" keeps PostgreSQL from intersecting the scan with the level's index, a
        # cost (most experts reach the usual levels) for no rows saved; not for the
        # levels few reach.
        level = (
            "e.max_isced_level"
            if need.min_isced_level >= SELECTIVE_ISCED
            else "(e.max_isced_level + 0)"
        )
        filters.append(f"{level} >= :min_isced")
        params["min_isced"] = need.min_isced_level
    params["period_start"] = need.starts_on or today
    params["period_end"] = need.ends_on or need.starts_on or today
    filters.append("(e.available_from IS NULL OR e.available_from <= :period_start)")
    filters.append("(e.available_until IS NULL OR e.available_until >= :period_end)")
    if need.work_mode == "remote":
        filters.append("e.remote")

    text_query = query_words(need.title, need.description)
    texts: dict[str, str] = {"text_query": text_query} if text_query else {}
    hits = []
    skill_evidence = []
    for i, skill in enumerate(need.skills):
        words = " or ".join(
            " ".join(_WORD.findall(_fold(w))) for w in skill.words if _WORD.search(_fold(w))
        )
        when = []
        exact = matches = None
        if skill.esco_uri:
            params[f"skill_uri_{i}"] = [skill.esco_uri]
            array_params.append(f"skill_uri_{i}")
            exact = Match("skill_uris", f":skill_uri_{i}")
            when.append(f"WHEN {exact.sql(indexed=False)} THEN {SKILL_EXACT}")
        if words:
            texts[f"skill_words_{i}"] = words
            matches = Match("search", _tsquery(f"skill_words_{i}"), fulltext=True)
            when.append(f"WHEN {matches.sql(indexed=False)} THEN {SKILL_WORDS}")
        hits.append(f"CASE {' '.join(when)} ELSE 0.0 END" if when else "0.0")
        skill_evidence.append(SkillEvidence(exact=exact, words=matches))

    groups = []
    exact_group = tuple(
        Match(column, f":{name}")
        for column, name in (
            ("isco_units", "units"),
            ("isco_minors", "minors"),
            ("isco_submajors", "submajors"),
        )
        if sets[name]
    )
    if exact_group:
        groups.append((OCCUPATION_LEVELS["exact"], exact_group))
    if sets["near_minors"]:
        groups.append((OCCUPATION_LEVELS["minor"], (Match("isco_minors", ":near_minors"),)))
    if sets["near_submajors"]:
        groups.append(
            (OCCUPATION_LEVELS["sub_major"], (Match("isco_submajors", ":near_submajors"),))
        )
    evidence = Evidence(
        levels=tuple(groups),
        skills=tuple(skill_evidence),
        text=Match("search", _tsquery("text_query"), fulltext=True) if text_query else None,
    )
    occupation_levels = tuple(
        (when, level)
        for when, level, sought in (
            (
                "e.isco_units && :units OR e.isco_minors && :minors "
                "OR e.isco_submajors && :submajors",
                OCCUPATION_LEVELS["exact"],
                exact_group,
            ),
            ("e.isco_minors && :near_minors", OCCUPATION_LEVELS["minor"], sets["near_minors"]),
            (
                "e.isco_submajors && :near_submajors",
                OCCUPATION_LEVELS["sub_major"],
                sets["near_submajors"],
            ),
        )
        if sought
    )
    expressions = {
        "occupation": (
            "CASE "
            + " ".join(f"WHEN {when} THEN {level}" for when, level in occupation_levels)
            + " ELSE 0.0 END"
            if occupation_levels
            else "0.0"
        ),
        "experience": (
            "(SELECT coalesce(sum(y.value::numeric), 0) "
            "FROM jsonb_each_text(e.experience_years) y "
            "WHERE left(y.key, 3) = ANY(:related3) OR left(y.key, 2) = ANY(:related2))"
        ),
        "text_rank": (
            f"least(ts_rank(e.search, {_tsquery('text_query')}), {TEXT_RANK_CAP})"
            if text_query
            else "0.0::float4"
        ),
    }
    return Plan(
        need=need,
        points=Points.of(need, weights),
        evidence=evidence,
        filters=" AND ".join(filters),
        expressions=expressions,
        skill_hits=tuple(hits),
        occupation_levels=occupation_levels,
        params=params,
        array_params=array_params,
        texts=texts,
    )


async def _score(
    session: AsyncSession,
    ranking: Plan,
    params: dict[str, Any],
    *,
    limit: int,
    condition: str | None,
    sample: int | None = None,
    reach: float | None = None,
) -> list[Candidate]:
    statement, values = ranking.statement(
        limit=limit, condition=condition, sample=sample, reach=reach
    )
    found = (await session.execute(statement, {**values, **params})).mappings().all()
    return [
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


async def _threshold(
    session: AsyncSession, ranking: Plan, queries: dict[str, str], limit: int
) -> list[Candidate]:
    """The best ``limit`` candidates, scoring only those who can reach a threshold taken
    from samples of the strongest evidence (the module's docstring says why it is exact)."""
    evidence = ranking.evidence
    if evidence.text and queries.get("text_query"):
        terms = tuple(dict.fromkeys(_LEXEME.findall(queries["text_query"])))
        evidence = dataclasses.replace(evidence, terms=terms)
        queries = {**queries, **evidence.term_queries()}
    seeds = evidence.seeds(ranking.points)
    sample = SEED_SAMPLE
    theta: float | None = None
    seen: dict[Any, float] = {}
    for condition in seeds:
        found = await _score(
            session, ranking, queries, limit=limit, condition=condition, sample=sample
        )
        seen.update((c.member_id, c.score) for c in found)
        if len(seen) >= limit:
            theta = sorted(seen.values(), reverse=True)[limit - 1]
            break
        if condition == seeds[-1] and len(found) < min(limit, sample):
            # Fewer candidates than the sample: they were all scored.
            return found
    # Scores are rounded to hundredths: keep whoever could round up to theta.
    reach = None if theta is None else theta - 0.01
    condition = evidence.retrieval(ranking.points, reach)
    return await _score(session, ranking, queries, limit=limit, condition=condition, reach=reach)


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
    """The best ``limit`` candidates for the need, best first; among ``only`` if given
    (scored whether they show evidence of fit or not).

    Unless ``exhaustive`` or ``only``, a threshold taken from a sample of the strongest
    evidence first narrows who is scored (the module's docstring); the result is the
    same as scoring every candidate (``exhaustive``)."""
    ranking = plan(need, today=today or date.today(), only=only, weights=weights)
    queries = await compile_queries(session, ranking.texts)
    if only is not None:
        candidates = await _score(session, ranking, queries, limit=limit, condition=None)
    elif exhaustive:
        condition = ranking.evidence.retrieval(ranking.points)
        candidates = await _score(session, ranking, queries, limit=limit, condition=condition)
    else:
        candidates = await _threshold(session, ranking, queries, limit)
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
