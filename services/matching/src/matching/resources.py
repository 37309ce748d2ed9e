"""The matching service's handles: settings, database, outbox, identity, audit trail.

Built once by ``matching.bootstrap``; routes get them through ``matching.deps``,
consumers and jobs from the bootstrap that builds them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from diaspora_events.outbox import OutboxWriter
from diaspora_events.shredding import EventKeySettings
from diaspora_identity.audit import AuditTrail
from diaspora_identity.http import Identity
from matching.settings import MatchingSettings

# What else closes with a need, in the transaction that closes it (session, outbox,
# need id, outcome: filled | cancelled | expired, time); returns how many records it
# changed. Bootstrap hands the needs the proposals' step (pending proposals withdrawn):
# the needs feature sits below the proposals and imports nothing of them.
NeedClosedStep = Callable[[AsyncSession, OutboxWriter, UUID, str, datetime], Awaitable[int]]


@dataclass
class Matching:
    settings: MatchingSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    outbox: OutboxWriter
    identity: Identity
    # Staff reads of personal data: the service's ``audit_log`` and its outbox.
    audit: AuditTrail
    need_closed: NeedClosedStep
    # Crypto-shredding: the key settings and the writer's keys (no cache: a request's
    # keys leave memory with it); consumers build their own caching resolver.
    key_settings: EventKeySettings | None = None

    async def database_ready(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def close(self) -> None:
        await self.identity.aclose()
        await self.engine.dispose()
