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

The steps are each feature's own (``proposals``, ``missions``, ``projects``):
``matching.bootstrap`` builds them and hands them to this consumer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.cloudevents import Envelope
from diaspora_events.consumer import DeadLetterSink, EventConsumer
from diaspora_events.contracts import MemberErasedV1, MemberMergedV1, MemberUpdatedV1
from diaspora_events.outbox import OutboxWriter
from matching.experts.projection import MISSIONS_CONSENT
from matching.tables import inbox

CONSUMER_NAME = "matching-records"

log = structlog.get_logger(__name__)

# A feature's part of an erasure, or of a withdrawn consent (session, outbox, member id):
# returns how many of its records it changed.
MemberStep = Callable[[AsyncSession, OutboxWriter, UUID], Awaitable[int]]
# A feature's part of a merge (session, merged id, survivor id).
MergeStep = Callable[[AsyncSession, UUID, UUID], Awaitable[None]]


async def erase_member(
    session: AsyncSession,
    outbox: OutboxWriter,
    member_id: UUID,
    steps: Mapping[str, MemberStep],
) -> None:
    """Everything matching holds on the person, beyond the experts read model."""
    counts = {name: await step(session, outbox, member_id) for name, step in steps.items()}
    log.info("member_records_erased", **counts)


async def merge_member(
    session: AsyncSession, merged_id: UUID, survivor_id: UUID, steps: Sequence[MergeStep]
) -> None:
    """The merged record's proposals, missions and projects become the survivor's."""
    for step in steps:
        await step(session, merged_id, survivor_id)


def build_consumer(
    *,
    sessions: async_sessionmaker[AsyncSession],
    outbox: OutboxWriter,
    dead_letters: DeadLetterSink,
    erase: Mapping[str, MemberStep],
    merge: Sequence[MergeStep],
    consent_withdrawn: Mapping[str, MemberStep],
    topic_prefix: str = "",
) -> EventConsumer:
    """The consumer (group ``matching-records``) running each feature's ``erase``,
    ``merge`` and ``consent_withdrawn`` steps, in the order given."""
    consumer = EventConsumer(
        name=CONSUMER_NAME,
        session_factory=sessions,
        inbox=inbox,
        dead_letters=dead_letters,
        topic_prefix=topic_prefix,
    )

    @consumer.on(MemberErasedV1)
    async def erased(event: MemberErasedV1, session: AsyncSession, _: Envelope) -> None:
        await erase_member(session, outbox, event.member_id, erase)

    @consumer.on(MemberMergedV1)
    async def merged(event: MemberMergedV1, session: AsyncSession, _: Envelope) -> None:
        await merge_member(session, event.member_id, event.survivor_id, merge)

    @consumer.on(MemberUpdatedV1)
    async def updated(event: MemberUpdatedV1, session: AsyncSession, _: Envelope) -> None:
        # A snapshot without the consent: whatever the update changed, nobody may be
        # asked to answer a mission proposal any more (a no-op if none is pending).
        if not event.profile.consents_to(MISSIONS_CONSENT):
            counts = {
                name: await step(session, outbox, event.member_id)
                for name, step in consent_withdrawn.items()
            }
            if any(counts.values()):
                log.info("proposals_withdrawn_for_consent", **counts)

    return consumer
