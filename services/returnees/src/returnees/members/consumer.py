"""The people read model's consumer of ``registry.members`` (group ``returnees``).

The shared builder (``diaspora_events.member_read_model``) handles every member event
type the registry publishes: the five snapshot events (registered, updated, confirmed,
identity-verified, marked-stale) update the read model if newer; erasure and merge remove
the person's row for good, after the steps of the features above (handed in by
``bootstrap``: e.g. the cases of an erased person, moved to a merge's survivor).
Idempotent: the inbox records each event id in the handler's transaction. What is the
returnees' own: the people's columns and mappings (``members.service``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_events.consumer import DeadLetterSink, EventConsumer
from diaspora_events.member_read_model import EraseStep, MergeStep
from diaspora_events.member_read_model import build_consumer as read_model_consumer
from diaspora_events.shredding import KeyResolver
from returnees.members import service as members
from returnees.tables import inbox

CONSUMER_NAME = "returnees"

__all__ = ["CONSUMER_NAME", "EraseStep", "MergeStep", "build_consumer"]


def build_consumer(
    *,
    sessions: async_sessionmaker[AsyncSession],
    dead_letters: DeadLetterSink,
    topic_prefix: str = "",
    keys: KeyResolver | None = None,
    erase_steps: Sequence[EraseStep] = (),
    merge_steps: Sequence[MergeStep] = (),
) -> EventConsumer:
    return read_model_consumer(
        members.READ_MODEL,
        name=CONSUMER_NAME,
        early_row=members.early_row_of,
        sessions=sessions,
        inbox=inbox,
        dead_letters=dead_letters,
        topic_prefix=topic_prefix,
        keys=keys,
        erase_steps=erase_steps,
        merge_steps=merge_steps,
        log_noun="person",
    )
