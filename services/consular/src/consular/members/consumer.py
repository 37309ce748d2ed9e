"""The applicants read model's consumer of ``registry.members`` (group ``consular``).

The shared builder (``diaspora_events.member_read_model``) handles every member event
type the registry publishes: the five snapshot events (registered, updated, confirmed,
identity-verified, marked-stale) update the read model if newer; erasure and merge remove
the person's row for good, after the steps of the features above (handed in by
``bootstrap``: applications of an erased person, moved to a merge's survivor).
Idempotent: the inbox records each event id in the handler's transaction. What is
consular's own: the applicants' columns and mappings (``members.service``), and the
embassy of an early registration, from the country of residence (the jurisdictions).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from consular.members import service as members
from consular.tables import inbox
from diaspora_events.consumer import DeadLetterSink, EventConsumer
from diaspora_events.member_read_model import EraseStep, MergeStep
from diaspora_events.member_read_model import build_consumer as read_model_consumer
from diaspora_events.shredding import KeyResolver
from diaspora_identity.jurisdictions import Jurisdictions, default_jurisdictions

CONSUMER_NAME = "consular"

__all__ = ["CONSUMER_NAME", "EraseStep", "MergeStep", "build_consumer"]


def build_consumer(
    *,
    sessions: async_sessionmaker[AsyncSession],
    dead_letters: DeadLetterSink,
    topic_prefix: str = "",
    keys: KeyResolver | None = None,
    erase_steps: Sequence[EraseStep] = (),
    merge_steps: Sequence[MergeStep] = (),
    jurisdictions: Jurisdictions | None = None,
) -> EventConsumer:
    return read_model_consumer(
        members.READ_MODEL,
        name=CONSUMER_NAME,
        early_row=partial(members.early_row_of, places=jurisdictions or default_jurisdictions()),
        sessions=sessions,
        inbox=inbox,
        dead_letters=dead_letters,
        topic_prefix=topic_prefix,
        keys=keys,
        erase_steps=erase_steps,
        merge_steps=merge_steps,
        log_noun="applicant",
    )
