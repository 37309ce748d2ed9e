"""Associations take part in a member's erasure and merge.

The bootstrap builds these steps with the service's outbox writer and hands them to the
erasure (rights) and the merge of duplicates: an erased member leaves every association,
a merged duplicate's links and officer entries move to the survivor. Both run inside the
member's transaction and publish each changed association's new snapshot through the
outbox.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.outbox import OutboxWriter
from registry.associations.service import forget_member, move_member
from registry.resources import ErasureStep, MergeStep


def erasure_step(outbox_writer: OutboxWriter) -> ErasureStep:
    async def erase_from_associations(session: AsyncSession, member_id: UUID) -> None:
        await forget_member(session, outbox_writer=outbox_writer, member_id=member_id)

    return erase_from_associations


def merge_step(outbox_writer: OutboxWriter) -> MergeStep:
    async def merge_into_survivor(
        session: AsyncSession, absorbed_id: UUID, survivor_id: UUID
    ) -> None:
        await move_member(
            session, outbox_writer=outbox_writer, from_id=absorbed_id, to_id=survivor_id
        )

    return merge_into_survivor
