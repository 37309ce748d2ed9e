"""Each feature's own merge step (run by the contacts consumer on registry.member.merged,
in the order bootstrap.MERGE_STEPS gives), against the real database."""

from __future__ import annotations

from uuid import UUID

import pytest
from sqlalchemy import select
from uuid_utils.compat import uuid7

from notifications.bootstrap import MERGE_STEPS
from notifications.campaigns import service as campaigns_service
from notifications.campaigns.tables import campaign_recipients, campaigns
from notifications.resources import Notifications

pytestmark = pytest.mark.integration


async def test_campaign_audiences_move_to_the_survivor_unless_it_is_there_already(
    notifications: Notifications,
) -> None:
    absorbed, survivor = UUID(str(uuid7())), UUID(str(uuid7()))
    only_absorbed, both = UUID(str(uuid7())), UUID(str(uuid7()))
    async with notifications.sessions() as session, session.begin():
        for campaign_id in (only_absorbed, both):
            await session.execute(
                campaigns.insert().values(
                    id=campaign_id,
                    name="news",
                    template="newsletter",
                    segment={},
                    rate_per_second=10,
                    created_by="test",
                )
            )
        await session.execute(
            campaign_recipients.insert(),
            [
                {"campaign_id": only_absorbed, "recipient_id": absorbed},
                {"campaign_id": both, "recipient_id": absorbed},
                {"campaign_id": both, "recipient_id": survivor},
            ],
        )
        await campaigns_service.merge_member(session, absorbed, survivor)
    async with notifications.sessions() as session:
        rows = {
            (r.campaign_id, r.recipient_id)
            for r in await session.execute(
                select(campaign_recipients.c.campaign_id, campaign_recipients.c.recipient_id)
            )
        }
    # Moved where the survivor was not in the audience; left (for the erasure that
    # follows) where it was: nobody is sent one campaign twice.
    assert rows == {(only_absorbed, survivor), (both, absorbed), (both, survivor)}
    assert campaigns_service.merge_member in MERGE_STEPS
