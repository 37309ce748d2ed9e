"""``registry.member.identity-verified`` is a snapshot update like the others, for the live
consumer and the rebuild: on the compacted topic it may be all that is left of a member."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import UUID

import pytest
from matching_testing.experts import new_member_id, profile, publish, updated
from sqlalchemy import select

from diaspora_devstack.testing import asyncpg_url, wait_until
from diaspora_events.contracts.registry import (
    IdentityVerification,
    MemberIdentityVerifiedV1,
    MemberProfile,
)
from diaspora_events.topics import REGISTRY_MEMBERS
from diaspora_service.db import make_engine
from matching.experts.consumer import CONSUMER_NAME
from matching.experts.rebuild import rebuild
from matching.resources import Matching
from matching.tables import inbox

from .test_experts_read_model import expert, running_worker

pytestmark = pytest.mark.integration


def identity_verified(member_id: UUID, snapshot: MemberProfile) -> MemberIdentityVerifiedV1:
    now = datetime.now(UTC)
    check = IdentityVerification(
        level="in_person",
        method="document_in_person",
        document_type="passport",
        verified_at=now,
        embassy_id="fr-paris",
        expires_on=date(2031, 1, 31),
    )
    return MemberIdentityVerifiedV1(
        member_id=member_id,
        verified_at=now,
        level="in_person",
        profile=snapshot.model_copy(update={"identity": check}),
    )


async def test_the_live_consumer_applies_the_snapshot_of_an_identity_check(
    matching: Matching, kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = topic_prefix + REGISTRY_MEMBERS.name
    member = new_member_id()
    event = identity_verified(member, profile(given_name="Amavi"))
    async with running_worker(matching):
        await publish(kafka_bootstrap, topic, updated(member, profile(given_name="Ama")))
        await wait_until(lambda: _named(matching, member, "Ama"), timeout=60, message="Ama")
        # The check's snapshot carries a later profile (the name corrected meanwhile).
        await publish(kafka_bootstrap, topic, event)
        await wait_until(lambda: _named(matching, member, "Amavi"), timeout=60, message="Amavi")
    # Handled (its inbox entry committed with the row), not ignored nor dead-lettered.
    async with matching.sessions() as session:
        found = await session.execute(
            select(inbox.c.event_id).where(
                inbox.c.consumer == CONSUMER_NAME,
                inbox.c.event_type == MemberIdentityVerifiedV1.event_type,
            )
        )
        assert found.first() is not None


async def test_a_rebuild_keeps_a_member_whose_last_event_is_an_identity_check(
    matching: Matching, matching_database: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = topic_prefix + REGISTRY_MEMBERS.name
    member = new_member_id()
    # After compaction, the member's latest event is all the topic holds of them.
    await publish(kafka_bootstrap, topic, identity_verified(member, profile(given_name="Sena")))
    owner = make_engine(asyncpg_url(matching_database))
    try:
        report = await rebuild(owner, bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix)
    finally:
        await owner.dispose()
    assert report.events_applied == 1
    row = await expert(matching, member)
    assert row is not None
    assert row["given_name"] == "Sena"


async def _named(service: Matching, member_id: UUID, name: str) -> bool:
    row = await expert(service, member_id)
    return row is not None and row["given_name"] == name
