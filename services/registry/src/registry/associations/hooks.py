"""Associations take part in a member's erasure and merge.

Registered at import (this module is imported by the HTTP app through the associations
router): :data:`registry.service.ERASURE_STEPS` removes an erased member from every
association, :data:`registry.duplicates.cases.MERGE_STEPS` moves a merged duplicate's
links and officer entries to the survivor. Both run inside the member's transaction and
publish each changed association's new snapshot through the outbox.
"""

from __future__ import annotations

import os
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.outbox import OutboxWriter
from registry.adapters.orm import outbox
from registry.associations.service import forget_member, move_member
from registry.duplicates.cases import MERGE_STEPS
from registry.keys.store import process_keys
from registry.service import ERASURE_STEPS
from registry.settings import RegistrySettings


def _writer() -> OutboxWriter:
    # The steps receive only the session and ids; the events' CloudEvents source is the
    # service's setting, read from the environment as RegistrySettings reads it.
    default = RegistrySettings.model_fields["event_source"].default
    return OutboxWriter(
        outbox, source=os.environ.get("REGISTRY_EVENT_SOURCE") or default, keys=process_keys()
    )


async def erase_from_associations(session: AsyncSession, member_id: UUID) -> None:
    await forget_member(session, outbox_writer=_writer(), member_id=member_id)


async def merge_into_survivor(session: AsyncSession, absorbed_id: UUID, survivor_id: UUID) -> None:
    await move_member(session, outbox_writer=_writer(), from_id=absorbed_id, to_id=survivor_id)


if erase_from_associations not in ERASURE_STEPS:
    ERASURE_STEPS.append(erase_from_associations)
if merge_into_survivor not in MERGE_STEPS:
    MERGE_STEPS.append(merge_into_survivor)
