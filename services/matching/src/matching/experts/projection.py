"""From a registry member snapshot to an experts row, and applying it.

Only members who consent to be contacted for missions become rows; for everyone
else (no consent, consent withdrawn, erased, merged away) the row is deleted.
Every event leaves the time it was published at in ``expert_sources``, and an
older snapshot than the one applied is ignored, so a redelivered or replayed
event never brings back someone who withdrew. Erasure and merge are final.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal
from uuid import UUID

from sqlalchemy import MetaData, Table, delete, func, literal, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from diaspora_events.contracts.registry import (
    MemberConfirmedV1,
    MemberErasedV1,
    MemberIdentityVerifiedV1,
    MemberMarkedStaleV1,
    MemberMergedV1,
    MemberProfile,
    MemberRegisteredV1,
    MemberUpdatedV1,
)
from diaspora_reference import isco
from matching.experts.tables import expert_sources, experts

MISSIONS_CONSENT: Final = "contact_for_missions"
State = Literal["candidate", "not_consenting", "erased", "merged"]
FINAL_STATES = ("erased", "merged")
# A session (the consumer's transaction) or a connection (the rebuild's).
Executor = AsyncSession | AsyncConnection
# Full-text document of an expert and of a need's words: accents folded, French and
# English stemming side by side (people write in either; ranking.py queries both).
FTS_CONFIGS = ("french", "english")


@dataclass(frozen=True)
class Tables:
    """Where a projection writes: the live tables, or the rebuild's fresh copies."""

    experts: Table
    sources: Table


LIVE = Tables(experts=experts, sources=expert_sources)


def copy_named(source: Table, name: str) -> Table:
    """``source``'s columns under another name (the rebuild's fresh tables)."""
    return source.to_metadata(MetaData(), name=name)


def search_document(text_value: Any) -> Any:
    """The tsvector of a text (SQL expression), as the ranking's queries expect it."""
    folded = func.unaccent(text_value)
    parts = [func.to_tsvector(text(f"'{cfg}'::regconfig"), folded) for cfg in FTS_CONFIGS]
    document: Any = parts[0]
    for part in parts[1:]:
        document = document.op("||")(part)
    return document


def isco_groups(codes: list[str]) -> tuple[list[str], list[str], list[str]]:
    """Unit groups, minor groups and sub-major groups the codes fall in."""
    units = sorted({c for c in codes if len(c) == 4})
    minors = sorted({c[:3] for c in codes if len(c) >= 3})
    submajors = sorted({c[:2] for c in codes if len(c) >= 2})
    return units, minors, submajors


def _isco_label(code: str, lang: isco.Lang) -> str | None:
    try:
        return isco.label(code, lang)
    except Exception:
        return None


def expert_row(member_id: UUID, profile: MemberProfile, at: datetime) -> dict[str, Any]:
    """The columns of an expert, computed once when the event is applied."""
    year = at.year
    occupations = [o.isco_code for o in profile.occupations if o.isco_code]
    experience_codes = [e.isco_code for e in profile.experience if e.isco_code]
    units, minors, submajors = isco_groups(occupations + experience_codes)
    years: dict[str, int] = {}
    for job in profile.experience:
        if not job.isco_code:
            continue
        if job.start_year is None:
            spent = 1
        else:
            spent = max(1, min(job.end_year or year, year) - job.start_year)
        years[job.isco_code] = years.get(job.isco_code, 0) + spent
    languages = sorted({*(lang.lower() for lang in profile.languages), profile.preferred_language})
    skill_labels = [s.label for s in profile.skills]
    occupation_titles = []
    for o in profile.occupations:
        occupation_titles.append(o.title or "")
        occupation_titles.append(_isco_label(o.isco_code, "fr") or "")
        occupation_titles.append(_isco_label(o.isco_code, "en") or "")
    words = [
        *skill_labels,
        *occupation_titles,
        *(e.title for e in profile.experience),
        *(e.field or "" for e in profile.education),
    ]
    search_text = " ; ".join(w for w in words if w)
    levels = [e.isced_level for e in profile.education]
    summary = {
        "occupations": [{"isco_code": o.isco_code, "title": o.title} for o in profile.occupations],
        "experience": [
            {
                "title": e.title,
                "isco_code": e.isco_code,
                "start_year": e.start_year,
                "end_year": e.end_year,
            }
            for e in profile.experience
        ],
        "education": [{"isced_level": e.isced_level, "field": e.field} for e in profile.education],
    }
    availability = profile.availability
    return {
        "member_id": member_id,
        "given_name": profile.given_name,
        "family_name": profile.family_name,
        "preferred_language": profile.preferred_language,
        "country_of_residence": profile.country_of_residence,
        "embassy_id": profile.embassy_id,
        "languages": languages,
        "occupations": sorted(set(occupations)),
        "experience_occupations": sorted(set(experience_codes)),
        "isco_units": units,
        "isco_minors": minors,
        "isco_submajors": submajors,
        "experience_years": years,
        "skill_uris": sorted({s.esco_uri for s in profile.skills if s.esco_uri}),
        "skill_labels": skill_labels,
        "max_isced_level": max(levels) if levels else None,
        "mission_types": sorted(set(availability.mission_types)),
        "available_from": availability.available_from,
        "available_until": availability.available_until,
        "remote": availability.remote,
        "summary": summary,
        "search_text": search_text,
        "source_time": at,
    }


async def _claim(
    session: Executor, tables: Tables, member_id: UUID, at: datetime, state: State
) -> bool:
    """Record that this event is the member's latest; False if a newer one (or a final
    state) was applied already, in which case the event changes nothing."""
    sources = tables.sources
    statement = (
        insert(sources)
        .values(member_id=member_id, source_time=at, state=state)
        .on_conflict_do_update(
            index_elements=[sources.c.member_id],
            set_={"source_time": at, "state": state},
            where=(sources.c.source_time <= at) & sources.c.state.not_in(FINAL_STATES),
        )
        .returning(sources.c.member_id)
    )
    return (await session.execute(statement)).first() is not None


async def apply_profile(
    session: Executor,
    member_id: UUID,
    profile: MemberProfile | None,
    at: datetime,
    tables: Tables = LIVE,
) -> State | None:
    """Apply a member's snapshot; returns the state recorded, or None if it was stale."""
    consenting = profile is not None and profile.consents_to(MISSIONS_CONSENT)
    state: State = "candidate" if consenting else "not_consenting"
    if not await _claim(session, tables, member_id, at, state):
        return None
    if profile is None or not consenting:
        await _delete(session, tables, member_id)
        return state
    row = expert_row(member_id, profile, at)
    values = {
        **row,
        "search": search_document(literal(row["search_text"])),
        "updated_at": func.now(),
    }
    statement = insert(tables.experts).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[tables.experts.c.member_id],
        set_={k: statement.excluded[k] for k in values if k != "member_id"},
    )
    await session.execute(statement)
    return state


async def remove(
    session: Executor,
    member_id: UUID,
    at: datetime,
    state: Literal["erased", "merged"],
    tables: Tables = LIVE,
) -> None:
    """Erasure or merge: the row goes, and no later snapshot brings it back."""
    sources = tables.sources
    await session.execute(
        insert(sources)
        .values(member_id=member_id, source_time=at, state=state)
        .on_conflict_do_update(
            index_elements=[sources.c.member_id],
            set_={"source_time": func.greatest(sources.c.source_time, at), "state": state},
        )
    )
    await _delete(session, tables, member_id)


async def _delete(session: Executor, tables: Tables, member_id: UUID) -> None:
    await session.execute(delete(tables.experts).where(tables.experts.c.member_id == member_id))


# Every event of registry.members: each but erasure and merge carries the whole snapshot,
# and the topic is compacted, so a member's latest event (whatever its type) may be all a
# rebuild finds of them.
MemberEvent = (
    MemberRegisteredV1
    | MemberUpdatedV1
    | MemberConfirmedV1
    | MemberMarkedStaleV1
    | MemberIdentityVerifiedV1
    | MemberMergedV1
    | MemberErasedV1
)
MEMBER_EVENTS: tuple[type[MemberEvent], ...] = (
    MemberRegisteredV1,
    MemberUpdatedV1,
    MemberConfirmedV1,
    MemberMarkedStaleV1,
    MemberIdentityVerifiedV1,
    MemberMergedV1,
    MemberErasedV1,
)


async def apply_event(
    session: Executor, event: MemberEvent, at: datetime, tables: Tables = LIVE
) -> None:
    """One registry member event, published at ``at``, applied to the read model."""
    if isinstance(event, MemberErasedV1):
        await remove(session, event.member_id, at, "erased", tables)
    elif isinstance(event, MemberMergedV1):
        # The survivor's merged profile follows as registry.member.updated.
        await remove(session, event.member_id, at, "merged", tables)
    else:
        # Early registrations carry no profile, hence no consent: no candidate until an
        # update brings the profile.
        await apply_profile(session, event.member_id, event.profile, at, tables)
