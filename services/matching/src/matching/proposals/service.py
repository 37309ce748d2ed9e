"""Proposals: a coordinator proposes a need to shortlisted experts, each expert accepts
or declines, and the need fills.

- Proposing: only experts of the read model (they consent to be contacted for
  missions) who pass the need's hard filters now, scored by the ranking, with its
  reasons kept on the proposal; one proposal per need and expert, so repeating a
  request proposes nobody twice; the need moves to ``proposals_sent``.
- Answering: the expert alone (a citizen whose token's ``member_id`` is the
  proposal's), while the proposal is pending and the need open. An acceptance opens
  the mission record; when accepted experts reach the number wanted, the need is
  filled (``matching.need.closed``) and the proposals still pending are withdrawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, get_args
from uuid import UUID

import uuid_utils.compat as uuid_compat
from sqlalchemy import ColumnElement, Select, and_, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.contracts import (
    MatchAcceptedV1,
    MatchDeclinedV1,
    MatchProposedV1,
    MatchWithdrawnV1,
    MatchWithdrawnV2,
)
from diaspora_events.contracts.base import Event
from diaspora_events.outbox import OutboxWriter
from diaspora_identity.audit import AccessContext, AuditTrail
from diaspora_identity.policy import Decision
from matching import rows
from matching.experts.tables import experts
from matching.missions import service as missions
from matching.missions.tables import missions as missions_table
from matching.needs.tables import needs
from matching.proposals import needs_link
from matching.proposals.tables import proposals

# Needs that may receive proposals, and whose proposals may still be answered.
PROPOSING_STATES = frozenset({"open", "matching", "proposals_sent"})
MAX_PER_REQUEST = 50
WithdrawReason = Literal[
    "need_filled", "need_cancelled", "need_expired", "member_erased", "consent_withdrawn"
]
# The reasons matching.match.withdrawn v1 can carry (v2 adds consent_withdrawn).
V1_REASONS = frozenset(get_args(MatchWithdrawnV1.model_fields["reason"].annotation))

PROPOSAL_FIELDS: tuple[str, ...] = (
    "id",
    "need_id",
    "member_id",
    "given_name",
    "family_name",
    "status",
    "score",
    "reasons",
    "proposed_at",
    "respond_by",
    "answered_at",
    "decline_reason",
    "decline_comment",
    "withdrawn_at",
    "withdraw_reason",
    "mission_id",
    "need",
)
SCOPE_COLUMNS = {"member_id": proposals.c.member_id}


class NeedNotFound(Exception):
    pass


class NeedNotOpen(Exception):
    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class NotCandidates(Exception):
    """Some of the experts are not candidates for this need (with why, per expert)."""

    def __init__(self, refused: dict[UUID, str]) -> None:
        super().__init__(f"{len(refused)} experts are not candidates")
        self.refused = refused


class ProposalNotFound(Exception):
    pass


class AlreadyAnswered(Exception):
    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


@dataclass(frozen=True)
class ProposalQuery:
    proposal_id: UUID | None = None
    need_id: UUID | None = None
    status: str | None = None
    offset: int = 0
    limit: int = 50


def _select() -> Select[Any]:
    return select(
        proposals,
        experts.c.given_name,
        experts.c.family_name,
        missions_table.c.id.label("mission_id"),
        needs.c.title.label("need_title"),
        needs.c.type.label("need_type"),
        needs.c.institution.label("need_institution"),
        needs.c.region.label("need_region"),
        needs.c.prefecture.label("need_prefecture"),
        needs.c.work_mode.label("need_work_mode"),
        needs.c.starts_on.label("need_starts_on"),
        needs.c.ends_on.label("need_ends_on"),
        needs.c.status.label("need_status"),
    ).select_from(
        proposals.join(needs, needs.c.id == proposals.c.need_id)
        .outerjoin(experts, experts.c.member_id == proposals.c.member_id)
        .outerjoin(missions_table, missions_table.c.proposal_id == proposals.c.id)
    )


def _shaped(row: Mapping[str, Any]) -> dict[str, Any]:
    """A proposal row with its need's public summary nested."""
    shaped = {k: v for k, v in row.items() if not k.startswith("need_") or k == "need_id"}
    shaped["need"] = {
        "title": row["need_title"],
        "type": row["need_type"],
        "institution": row["need_institution"],
        "region": row["need_region"],
        "prefecture": row["need_prefecture"],
        "work_mode": row["need_work_mode"],
        "starts_on": row["need_starts_on"],
        "ends_on": row["need_ends_on"],
        "status": row["need_status"],
    }
    return shaped


async def find_proposals(
    *,
    sessions: async_sessionmaker[AsyncSession],
    audit: AuditTrail,
    decision: Decision,
    context: AccessContext,
    query: ProposalQuery,
) -> list[dict[str, Any]]:
    """Proposals within the caller's scope (an expert: their own), newest first."""
    statement = _select().where(decision.where(SCOPE_COLUMNS))
    if query.proposal_id is not None:
        statement = statement.where(proposals.c.id == query.proposal_id)
    if query.need_id is not None:
        statement = statement.where(proposals.c.need_id == query.need_id)
    if query.status is not None:
        statement = statement.where(proposals.c.status == query.status)
    statement = (
        statement.order_by(proposals.c.proposed_at.desc(), proposals.c.id.desc())
        .offset(query.offset)
        .limit(query.limit)
    )
    async with sessions() as session, session.begin():
        found = [_shaped(r) for r in await rows.every(session, statement)]
        views = [decision.project(row, PROPOSAL_FIELDS) for row in found]
        await audit.record_personal_reads(session, decision, context, found, views)
    return views


async def _locked_need(session: AsyncSession, need_id: UUID) -> dict[str, Any]:
    need = await rows.first(session, select(needs).where(needs.c.id == need_id).with_for_update())
    if need is None:
        raise NeedNotFound()
    return need


async def propose(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    audit: AuditTrail,
    decision: Decision,
    context: AccessContext,
    need_id: UUID,
    member_ids: Sequence[UUID],
    respond_by: date | None,
) -> tuple[list[dict[str, Any]], int]:
    """Propose the need to these experts; returns the proposals (new and earlier) and
    how many are new. All or nothing: if one expert is not a candidate now, nobody is
    proposed and :class:`NotCandidates` says who and why."""
    wanted = list(dict.fromkeys(member_ids))
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        need = await _locked_need(session, need_id)
        if need["status"] not in PROPOSING_STATES:
            raise NeedNotOpen(need["status"])
        earlier = {
            r["member_id"]: r["id"]
            for r in await rows.every(
                session,
                select(proposals.c.member_id, proposals.c.id).where(
                    proposals.c.need_id == need_id, proposals.c.member_id.in_(wanted)
                ),
            )
        }
        fresh = [m for m in wanted if m not in earlier]
        scored = await needs_link.score_candidates(session, need, fresh) if fresh else {}
        refused = {m: why for m, why in scored.items() if isinstance(why, str)}
        if refused:
            raise NotCandidates(refused)
        created: list[UUID] = []
        for member_id in fresh:
            candidate = scored[member_id]
            assert not isinstance(candidate, str)
            proposal_id = uuid_compat.uuid7()
            inserted = (
                await session.execute(
                    insert(proposals)
                    .values(
                        id=proposal_id,
                        need_id=need_id,
                        member_id=member_id,
                        status="proposed",
                        score=candidate.score,
                        reasons=candidate.reasons,
                        proposed_by=decision.principal.subject,
                        proposed_at=now,
                        respond_by=respond_by,
                    )
                    .on_conflict_do_nothing(constraint="proposals_once_per_expert")
                    .returning(proposals.c.id)
                )
            ).first()
            if inserted is None:
                continue
            created.append(proposal_id)
            await outbox.add(
                session,
                MatchProposedV1(
                    proposal_id=proposal_id,
                    need_id=need_id,
                    member_id=member_id,
                    proposed_at=now,
                    respond_by=respond_by,
                    need_title=need["title"],
                    need_type=need["type"],
                    institution=need["institution"],
                    region=need["region"],
                    prefecture=need["prefecture"],
                    work_mode=need["work_mode"],
                    starts_on=need["starts_on"],
                    ends_on=need["ends_on"],
                    score=max(candidate.score, 0.0),
                    reasons=candidate.summary,
                ),
            )
        if created and need["status"] != "proposals_sent":
            await needs_link.set_status(
                session, outbox, need, "proposals_sent", now, on_close=withdraw_for_closed_need
            )
        found = [
            _shaped(r)
            for r in await rows.every(
                session,
                _select()
                .where(proposals.c.need_id == need_id, proposals.c.member_id.in_(wanted))
                .order_by(proposals.c.proposed_at, proposals.c.id),
            )
        ]
        views = [decision.project(row, PROPOSAL_FIELDS) for row in found]
        await audit.record_personal_reads(session, decision, context, found, views)
    return views, len(created)


async def _locked_own(
    session: AsyncSession, decision: Decision, proposal_id: UUID
) -> dict[str, Any]:
    row = await rows.first(
        session,
        select(proposals)
        .where(proposals.c.id == proposal_id, decision.where(SCOPE_COLUMNS))
        .with_for_update(),
    )
    if row is None:
        raise ProposalNotFound()
    return row


async def _view(session: AsyncSession, decision: Decision, proposal_id: UUID) -> dict[str, Any]:
    row = _shaped(await rows.one(session, _select().where(proposals.c.id == proposal_id)))
    return decision.project(row, PROPOSAL_FIELDS)


async def accept(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    decision: Decision,
    proposal_id: UUID,
) -> tuple[dict[str, Any], bool]:
    """The expert accepts; returns the proposal and whether it changed now (accepting
    twice is the same acceptance)."""
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        row = await _locked_own(session, decision, proposal_id)
        if row["status"] == "accepted":
            return await _view(session, decision, proposal_id), False
        if row["status"] != "proposed":
            raise AlreadyAnswered(row["status"])
        # The need's row lock serialises acceptances: never more experts than wanted.
        need = await _locked_need(session, row["need_id"])
        if need["status"] not in PROPOSING_STATES:
            raise NeedNotOpen(need["status"])
        accepted = (
            await session.execute(
                select(func.count()).where(
                    proposals.c.need_id == need["id"], proposals.c.status == "accepted"
                )
            )
        ).scalar_one()
        await session.execute(
            update(proposals)
            .where(proposals.c.id == proposal_id)
            .values(status="accepted", answered_at=now)
        )
        await missions.open_mission(
            session, proposal_id=proposal_id, need=need, member_id=row["member_id"], now=now
        )
        await outbox.add(
            session,
            MatchAcceptedV1(
                proposal_id=proposal_id,
                need_id=need["id"],
                member_id=row["member_id"],
                accepted_at=now,
            ),
        )
        if accepted + 1 >= need["experts_wanted"]:
            # Filled: the proposals still pending are withdrawn with it (need_filled).
            await needs_link.set_status(
                session, outbox, need, "filled", now, on_close=withdraw_for_closed_need
            )
        return await _view(session, decision, proposal_id), True


async def decline(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    decision: Decision,
    proposal_id: UUID,
    reason: str,
    comment: str | None,
) -> tuple[dict[str, Any], bool]:
    """The expert declines, with a reason; declining twice is the same refusal."""
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        row = await _locked_own(session, decision, proposal_id)
        if row["status"] == "declined":
            return await _view(session, decision, proposal_id), False
        if row["status"] != "proposed":
            raise AlreadyAnswered(row["status"])
        await session.execute(
            update(proposals)
            .where(proposals.c.id == proposal_id)
            .values(
                status="declined",
                answered_at=now,
                decline_reason=reason,
                decline_comment=comment,
            )
        )
        await outbox.add(
            session,
            MatchDeclinedV1(
                proposal_id=proposal_id,
                need_id=row["need_id"],
                member_id=row["member_id"],
                declined_at=now,
                reason=reason,
                comment=comment,
            ),
        )
        return await _view(session, decision, proposal_id), True


async def withdraw_pending(
    session: AsyncSession,
    outbox: OutboxWriter,
    need_id: UUID,
    reason: WithdrawReason,
    *,
    now: datetime | None = None,
) -> int:
    """Withdraw the need's proposals still awaiting an answer (the need was filled,
    cancelled or expired), in the caller's transaction; returns how many."""
    return await _withdraw(session, outbox, proposals.c.need_id == need_id, reason, now)


# The reason a need's outcome gives the proposals it withdraws.
CLOSED_NEED_REASONS: dict[str, WithdrawReason] = {
    "filled": "need_filled",
    "cancelled": "need_cancelled",
    "expired": "need_expired",
}


async def withdraw_for_closed_need(
    session: AsyncSession, outbox: OutboxWriter, need_id: UUID, outcome: str, now: datetime
) -> int:
    """The need closed (``outcome``: filled, cancelled, expired): its proposals still
    awaiting an answer are withdrawn (``need_<outcome>``), in the caller's transaction."""
    return await withdraw_pending(session, outbox, need_id, CLOSED_NEED_REASONS[outcome], now=now)


async def withdraw_for_consent(session: AsyncSession, outbox: OutboxWriter, member_id: UUID) -> int:
    """The member withdrew their consent to be contacted for missions: their proposals
    still awaiting an answer are withdrawn (``consent_withdrawn``), in the caller's
    transaction; returns how many. Answered ones stay: the person said yes or no."""
    return await _withdraw(
        session, outbox, proposals.c.member_id == member_id, "consent_withdrawn", None
    )


async def _withdraw(
    session: AsyncSession,
    outbox: OutboxWriter,
    which: ColumnElement[bool],
    reason: WithdrawReason,
    now: datetime | None,
) -> int:
    now = now or datetime.now(UTC)
    withdrawn = await rows.every(
        session,
        update(proposals)
        .where(which, proposals.c.status == "proposed")
        .values(status="withdrawn", withdrawn_at=now, withdraw_reason=reason)
        .returning(proposals.c.id, proposals.c.need_id, proposals.c.member_id),
    )
    await outbox.add_many(session, withdrawal_events(withdrawn, reason, now))
    return len(withdrawn)


def withdrawal_events(
    withdrawn: Sequence[Mapping[str, Any]], reason: WithdrawReason, now: datetime
) -> list[Event]:
    """``matching.match.withdrawn`` for each proposal (``id``, ``need_id``,
    ``member_id``): in version 2, and in version 1 too while its consumers move, when
    version 1 can say the reason."""
    found: list[Event] = []
    for w in withdrawn:
        facts = {
            "proposal_id": w["id"],
            "need_id": w["need_id"],
            "member_id": w["member_id"],
            "withdrawn_at": now,
            "reason": reason,
        }
        found.append(MatchWithdrawnV2.model_validate(facts))
        if reason in V1_REASONS:
            found.append(MatchWithdrawnV1.model_validate(facts))
    return found


async def erase_member(session: AsyncSession, outbox: OutboxWriter, member_id: UUID) -> int:
    """Erasure: the person's proposals lose everything that says who they were.

    Pending ones are withdrawn (``member_erased``): nobody is left to answer. Every
    one keeps its need, status and dates, so that a need's count of accepted experts
    and the ministry's figures hold; the member id, the ranking's reasons (drawn
    from their profile) and their decline comment go.
    """
    now = datetime.now(UTC)
    pending = await rows.every(
        session,
        select(proposals.c.id, proposals.c.need_id).where(
            proposals.c.member_id == member_id, proposals.c.status == "proposed"
        ),
    )
    await session.execute(
        update(proposals)
        .where(proposals.c.id.in_([p["id"] for p in pending]))
        .values(status="withdrawn", withdrawn_at=now, withdraw_reason="member_erased")
    )
    result = await session.execute(
        update(proposals)
        .where(proposals.c.member_id == member_id)
        .values(member_id=None, reasons=None, decline_comment=None, erased_at=now)
    )
    anonymous = [{**p, "member_id": None} for p in pending]
    await outbox.add_many(session, withdrawal_events(anonymous, "member_erased", now))
    return int(getattr(result, "rowcount", 0) or 0)


async def merge_member(session: AsyncSession, merged_id: UUID, survivor_id: UUID) -> None:
    """Merge: the merged record's proposals become the survivor's.

    A proposal of the same need to both records cannot move (one per need and
    expert): it stays, anonymised, as after an erasure of the merged record.
    """
    other = proposals.alias("survivors")
    await session.execute(
        update(proposals)
        .where(
            proposals.c.member_id == merged_id,
            ~exists(
                select(other.c.id).where(
                    and_(
                        other.c.need_id == proposals.c.need_id,
                        other.c.member_id == survivor_id,
                    )
                )
            ),
        )
        .values(member_id=survivor_id)
    )
    await session.execute(
        update(proposals)
        .where(proposals.c.member_id == merged_id)
        .values(member_id=None, reasons=None, decline_comment=None)
    )
