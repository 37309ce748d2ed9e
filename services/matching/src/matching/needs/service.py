"""Use cases of national needs: post, change, move through the lifecycle, expire.

Every change and its event are written in one transaction (the outbox). Drafts
publish nothing; opening a need publishes ``matching.need.posted``; later changes
``matching.need.updated``; the end states ``matching.need.closed``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import uuid_utils.compat as uuid_compat
from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.contracts import NeedClosedV1, NeedDetails, NeedPostedV1, NeedUpdatedV1
from diaspora_events.outbox import OutboxWriter
from matching import rows
from matching.needs import domain
from matching.needs.domain import (
    CLOSED,
    EDITABLE,
    EXPIRABLE,
    PUBLISHED,
    SkillSought,
    check_transition,
)
from matching.needs.tables import needs
from matching.resources import NeedClosedStep

NEED_FIELDS: tuple[str, ...] = (
    "title",
    "type",
    "institution",
    "institution_kind",
    "description",
    "occupations",
    "skills",
    "min_isced_level",
    "languages",
    "starts_on",
    "ends_on",
    "duration_days",
    "region",
    "prefecture",
    "work_mode",
    "experts_wanted",
    "funding_amount",
    "funding_currency",
    "funding_source",
)


class NeedNotFound(Exception):
    pass


class NotEditable(Exception):
    def __init__(self, status: str) -> None:
        super().__init__(f"a {status} need can no longer be changed")
        self.status = status


class RevisionMismatch(Exception):
    def __init__(self, current: int) -> None:
        super().__init__(f"the need is at revision {current}")
        self.current = current


class IdempotencyConflict(Exception):
    pass


class PastItsDate(Exception):
    def __init__(self, day: date) -> None:
        super().__init__(f"the need's date ({day.isoformat()}) has passed; change its dates first")


@dataclass(frozen=True)
class NeedCommand:
    """What a coordinator writes (validated by :func:`validated`)."""

    title: str
    type: str
    institution: str
    institution_kind: str
    region: str
    description: str = ""
    occupations: list[str] = field(default_factory=list)
    skills: list[SkillSought] = field(default_factory=list)
    min_isced_level: int | None = None
    languages: list[str] = field(default_factory=list)
    starts_on: date | None = None
    ends_on: date | None = None
    duration_days: int | None = None
    prefecture: str | None = None
    work_mode: str = "on_site"
    experts_wanted: int = 1
    funding_amount: Decimal | None = None
    funding_currency: str | None = None
    funding_source: str | None = None


def validated(values: dict[str, Any]) -> dict[str, Any]:
    """Column values of a need after the reference-data checks (raises InvalidNeed)."""
    out = dict(values)
    if "occupations" in out:
        out["occupations"] = domain.occupations(out["occupations"])
    if "skills" in out:
        checked = domain.skills(
            s if isinstance(s, SkillSought) else SkillSought(**s) for s in out["skills"]
        )
        out["skills"] = [{"esco_uri": s.esco_uri, "label": s.label} for s in checked]
    if "languages" in out:
        out["languages"] = domain.languages(out["languages"])
    if "region" in out or "prefecture" in out:
        out["region"], out["prefecture"] = domain.place(out["region"], out.get("prefecture"))
    domain.dates(out.get("starts_on"), out.get("ends_on"), out.get("duration_days"))
    if (out.get("funding_amount") is None) != (out.get("funding_currency") is None):
        raise domain.InvalidNeed("funding_currency", "an amount needs its currency, and back")
    return out


def details(need: dict[str, Any]) -> NeedDetails:
    """The need as its events carry it (no personal data)."""
    funding = None
    if need["funding_amount"] is not None or need["funding_source"]:
        parts = [need["funding_source"] or ""]
        if need["funding_amount"] is not None:
            parts.append(f"{need['funding_amount']} {need['funding_currency']}")
        funding = ": ".join(p for p in parts if p)
    return NeedDetails(
        title=need["title"],
        type=need["type"],
        status=need["status"],
        institution=need["institution"],
        description=need["description"],
        occupations=list(need["occupations"]),
        skills=[s["esco_uri"] or s["label"] for s in need["skills"]],
        education_level=need["min_isced_level"],
        languages=list(need["languages"]),
        region=need["region"],
        prefecture=need["prefecture"],
        work_mode=need["work_mode"],
        starts_on=need["starts_on"],
        ends_on=need["ends_on"],
        duration_days=need["duration_days"],
        experts_wanted=need["experts_wanted"],
        funding=funding,
    )


def _digest(command: NeedCommand, caller: str) -> str:
    body = {**asdict(command), "_caller": caller}
    return hashlib.sha256(json.dumps(body, default=str, sort_keys=True).encode()).hexdigest()


async def post_need(
    session: AsyncSession,
    outbox: OutboxWriter,
    *,
    command: NeedCommand,
    created_by: str,
    publish: bool = False,
    idempotency_key: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """A new need (a draft, or open at once with ``publish``); returns (need, created).

    The same Idempotency-Key from the same caller returns the first need; with a
    different body it is a conflict.
    """
    digest = _digest(command, created_by) + (":open" if publish else "")
    if idempotency_key is not None:
        existing = await rows.first(
            session,
            select(needs).where(
                needs.c.created_by == created_by, needs.c.idempotency_key == idempotency_key
            ),
        )
        if existing is not None:
            if existing["request_digest"] != digest:
                raise IdempotencyConflict
            return existing, False
    values = validated(asdict(command))
    now = datetime.now(UTC)
    need = await rows.one(
        session,
        needs.insert()
        .values(
            id=uuid_compat.uuid7(),
            **values,
            status="open" if publish else "draft",
            created_by=created_by,
            created_at=now,
            updated_at=now,
            idempotency_key=idempotency_key,
            request_digest=digest if idempotency_key else None,
        )
        .returning(*needs.c),
    )
    if publish:
        await outbox.add(
            session, NeedPostedV1(need_id=need["id"], posted_at=now, need=details(need))
        )
    return need, True


async def get_need(
    session: AsyncSession, need_id: UUID, *, for_update: bool = False
) -> dict[str, Any]:
    query = select(needs).where(needs.c.id == need_id)
    if for_update:
        query = query.with_for_update()
    need = await rows.first(session, query)
    if need is None:
        raise NeedNotFound
    return need


async def change_need(
    session: AsyncSession,
    outbox: OutboxWriter,
    *,
    need_id: UUID,
    changes: dict[str, Any],
    expected_revision: int | None = None,
) -> dict[str, Any]:
    """Change a need's details while it is a draft, open or matching."""
    need = await get_need(session, need_id, for_update=True)
    if expected_revision is not None and expected_revision != need["revision"]:
        raise RevisionMismatch(need["revision"])
    if need["status"] not in EDITABLE:
        raise NotEditable(need["status"])
    merged = {f: need[f] for f in NEED_FIELDS}
    merged.update(changes)
    checked = validated(merged)
    changed = [f for f in NEED_FIELDS if checked[f] != need[f]]
    if not changed:
        return need
    now = datetime.now(UTC)
    updated = await rows.one(
        session,
        update(needs)
        .where(needs.c.id == need_id)
        .values(**{f: checked[f] for f in changed}, updated_at=now, revision=needs.c.revision + 1)
        .returning(*needs.c),
    )
    if updated["status"] in PUBLISHED:
        await outbox.add(
            session,
            NeedUpdatedV1(
                need_id=need_id, updated_at=now, changed_fields=changed, need=details(updated)
            ),
        )
    return updated


async def change_status(
    session: AsyncSession,
    outbox: OutboxWriter,
    *,
    need_id: UUID,
    to: str,
    reason: str | None = None,
    expected_revision: int | None = None,
    on_close: NeedClosedStep,
) -> dict[str, Any]:
    """Move a need along its lifecycle (raises IllegalTransition, a 409); ``on_close``
    runs when it closes (its pending proposals withdrawn)."""
    need = await get_need(session, need_id, for_update=True)
    if expected_revision is not None and expected_revision != need["revision"]:
        raise RevisionMismatch(need["revision"])
    check_transition(need["status"], to)
    if to in ("open", "matching") and need["status"] in ("draft", "open"):
        ends = domain.expires_on(need["starts_on"], need["ends_on"])
        if ends is not None and ends < date.today():
            raise PastItsDate(ends)
    return await _set_status(session, outbox, need, to, reason, on_close=on_close)


async def record_status(
    session: AsyncSession,
    outbox: OutboxWriter,
    need_id: UUID,
    status: str,
    *,
    now: datetime | None = None,
    reason: str | None = None,
    on_close: NeedClosedStep,
) -> dict[str, Any]:
    """Move a need to ``status`` for another use case (proposals sent, need filled),
    through the lifecycle's intermediate statuses if need be (open -> matching ->
    proposals_sent); one event tells the outcome. Raises IllegalTransition."""
    need = await get_need(session, need_id, for_update=True)
    steps = domain.lifecycle_path(need["status"], status)
    if not steps:
        return need
    return await _set_status(session, outbox, need, status, reason, now=now, on_close=on_close)


async def _set_status(
    session: AsyncSession,
    outbox: OutboxWriter,
    need: dict[str, Any],
    to: str,
    reason: str | None,
    *,
    now: datetime | None = None,
    on_close: NeedClosedStep,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    updated = await rows.one(
        session,
        update(needs)
        .where(needs.c.id == need["id"])
        .values(
            status=to,
            updated_at=now,
            revision=needs.c.revision + 1,
            closed_at=now if to in CLOSED else None,
            close_reason=reason if to in CLOSED else None,
        )
        .returning(*needs.c),
    )
    if need["status"] == "draft" and to == "open":
        event: Any = NeedPostedV1(need_id=need["id"], posted_at=now, need=details(updated))
    elif to in CLOSED:
        if need["status"] == "draft":
            return updated  # a draft nobody saw: nothing to tell
        event = NeedClosedV1(
            need_id=need["id"],
            closed_at=now,
            outcome=to,
            need=details(updated),
        )
    else:
        event = NeedUpdatedV1(
            need_id=need["id"], updated_at=now, changed_fields=["status"], need=details(updated)
        )
    await outbox.add(session, event)
    if to in CLOSED:
        # Proposals still awaiting an answer go with the need (the step bootstrap hands in).
        await on_close(session, outbox, need["id"], to, now)
    return updated


async def expire_due(
    session: AsyncSession, outbox: OutboxWriter, *, today: date, on_close: NeedClosedStep
) -> list[UUID]:
    """Expire the needs not filled by their date (start, else end); returns their ids.

    Each need is locked and checked again, so workers running this at once expire
    each need once, and a need filled meanwhile stays filled.
    """
    due = or_(
        needs.c.starts_on < today,
        and_(needs.c.starts_on.is_(None), needs.c.ends_on < today),
    )
    candidates = await session.execute(
        select(needs)
        .where(needs.c.status.in_(EXPIRABLE), due)
        .order_by(needs.c.id)
        .limit(500)
        .with_for_update(skip_locked=True)
    )
    expired = []
    for need in [dict(r) for r in candidates.mappings()]:
        await _set_status(session, outbox, need, "expired", "past its date", on_close=on_close)
        expired.append(need["id"])
    return expired


def listing(
    *,
    status: str | None = None,
    type_: str | None = None,
    region: str | None = None,
    published_only: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> Select[Any]:
    query = select(needs, func.count().over().label("total"))
    if status is not None:
        query = query.where(needs.c.status == status)
    if type_ is not None:
        query = query.where(needs.c.type == type_)
    if region is not None:
        query = query.where(needs.c.region == region)
    if published_only:
        query = query.where(needs.c.status.in_(PUBLISHED))
    return query.order_by(needs.c.created_at.desc(), needs.c.id).limit(limit).offset(offset)
