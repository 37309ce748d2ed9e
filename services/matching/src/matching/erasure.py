"""What matching holds on a person beyond the experts read model, when the registry
erases or merges them, or they withdraw their consent to be contacted for missions:
proposals, missions, projects.

Its own consumer group (``matching-records``) on ``registry.members``, handling
``registry.member.erased``, ``registry.member.merged`` and ``registry.member.updated``:
a rebuild of the experts read model replays the topic without touching these records,
and these records are not held up by the read model's work.

- Erased: proposals are anonymised (no member id, reasons or comment; pending ones
  withdrawn, reason ``member_erased``), missions keep their counted facts without the
  person (open ones cancelled), projects are deleted with the interest in them
  (``matching.project.withdrawn``, reason ``holder_erased``). See docs/matching.md.
- Merged: the records of the merged member id move to the survivor's id.
- Updated without the consent to be contacted for missions: the proposals still
  awaiting the person's answer are withdrawn (``matching.match.withdrawn`` v2, reason
  ``consent_withdrawn``); the experts read model drops them from the candidates.
"""

from __future__ import annotations

from uuid import UUID

import structlog
from sqlalchemy import and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.cloudevents import Envelope
from diaspora_events.consumer import DeadLetterSink, EventConsumer
from diaspora_events.contracts import MemberErasedV1, MemberMergedV1, MemberUpdatedV1
from diaspora_events.outbox import OutboxWriter
from matching.adapters.orm import inbox
from matching.experts.projection import MISSIONS_CONSENT
from matching.missions import service as missions
from matching.missions.tables import missions as missions_table
from matching.projects import service as projects
from matching.projects.tables import projects as projects_table
from matching.proposals import service as proposals
from matching.proposals.tables import proposals as proposals_table

CONSUMER_NAME = "matching-records"

log = structlog.get_logger(__name__)


async def erase_member(session: AsyncSession, outbox: OutboxWriter, member_id: UUID) -> None:
    """Everything matching holds on the person, beyond the experts read model."""
    withdrawn = await proposals.erase_member(session, outbox, member_id)
    anonymised = await missions.erase_member(session, outbox, member_id)
    deleted = await projects.erase_holder(session, outbox, member_id)
    log.info(
        "member_records_erased",
        proposals=withdrawn,
        missions=anonymised,
        projects=deleted,
    )


async def merge_member(session: AsyncSession, merged_id: UUID, survivor_id: UUID) -> None:
    """The merged record's proposals, missions and projects become the survivor's.

    A proposal of the same need to both records cannot move (one per need and
    expert): it stays, anonymised, as after an erasure of the merged record.
    """
    other = proposals_table.alias("survivors")
    await session.execute(
        update(proposals_table)
        .where(
            proposals_table.c.member_id == merged_id,
            ~exists(
                select(other.c.id).where(
                    and_(
                        other.c.need_id == proposals_table.c.need_id,
                        other.c.member_id == survivor_id,
                    )
                )
            ),
        )
        .values(member_id=survivor_id)
    )
    await session.execute(
        update(proposals_table)
        .where(proposals_table.c.member_id == merged_id)
        .values(member_id=None, reasons=None, decline_comment=None)
    )
    await session.execute(
        update(missions_table)
        .where(missions_table.c.member_id == merged_id)
        .values(member_id=survivor_id)
    )
    await session.execute(
        update(projects_table)
        .where(projects_table.c.holder_id == merged_id)
        .values(holder_id=survivor_id)
    )


def build_consumer(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    dead_letters: DeadLetterSink,
    topic_prefix: str = "",
) -> EventConsumer:
    consumer = EventConsumer(
        name=CONSUMER_NAME,
        session_factory=sessions,
        inbox=inbox,
        dead_letters=dead_letters,
        topic_prefix=topic_prefix,
    )

    @consumer.on(MemberErasedV1)
    async def erased(event: MemberErasedV1, session: AsyncSession, _: Envelope) -> None:
        await erase_member(session, outbox, event.member_id)

    @consumer.on(MemberMergedV1)
    async def merged(event: MemberMergedV1, session: AsyncSession, _: Envelope) -> None:
        await merge_member(session, event.member_id, event.survivor_id)

    @consumer.on(MemberUpdatedV1)
    async def updated(event: MemberUpdatedV1, session: AsyncSession, _: Envelope) -> None:
        # A snapshot without the consent: whatever the update changed, nobody may be
        # asked to answer a mission proposal any more (a no-op if none is pending).
        if not event.profile.consents_to(MISSIONS_CONSENT):
            withdrawn = await proposals.withdraw_for_consent(session, outbox, event.member_id)
            if withdrawn:
                log.info("proposals_withdrawn_for_consent", proposals=withdrawn)

    return consumer
