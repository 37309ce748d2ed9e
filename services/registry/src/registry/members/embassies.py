"""Re-deriving members' embassies when the jurisdictions change."""

from __future__ import annotations

import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_identity.jurisdictions import Jurisdictions
from registry.duplicates.tables import member_match_keys
from registry.members.tables import members

log = structlog.get_logger(__name__)


async def reconcile_embassies(
    sessions: async_sessionmaker[AsyncSession], jurisdictions: Jurisdictions
) -> int:
    """Re-derive each member's embassy from the jurisdictions (the file may have changed)."""
    derived = jurisdictions.sql_embassy_of(members.c.country_of_residence)
    async with sessions() as session, session.begin():
        result = await session.execute(
            update(members).where(members.c.embassy_id != derived).values(embassy_id=derived)
        )
        # The match keys carry the embassy too (whose officers review a duplicate case).
        await session.execute(
            update(member_match_keys)
            .where(
                member_match_keys.c.member_id == members.c.id,
                member_match_keys.c.embassy_id != members.c.embassy_id,
            )
            .values(embassy_id=members.c.embassy_id)
        )
    changed = int(getattr(result, "rowcount", 0) or 0)
    if changed:
        log.info("member_embassies_reassigned", members=changed)
    return changed
