"""The returnees service's handles: settings, database, outbox, identity, audit trail.

Built once by ``returnees.bootstrap``; routes get them through ``returnees.deps``,
consumers and jobs from the bootstrap that builds them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from diaspora_events.outbox import OutboxWriter
from diaspora_events.shredding import DataKeySource, EventKeySettings
from diaspora_identity.audit import AuditTrail
from diaspora_identity.http import Identity
from returnees.settings import ReturneesSettings

# The referrals of a case (id, need, partner_id, partner_name, status, referred_at,
# acknowledged_at, closed_at), oldest first: what the case shows of them. Referrals sit
# above cases (they read the case), so bootstrap hands their reader to cases.
CaseReferrals = Callable[[AsyncSession, UUID], Awaitable[list[dict[str, Any]]]]


async def no_referrals(session: AsyncSession, case_id: UUID) -> list[dict[str, Any]]:
    return []


@dataclass
class Returnees:
    settings: ReturneesSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    outbox: OutboxWriter
    identity: Identity
    # Staff reads and changes: the service's ``audit_log`` and its outbox.
    audit: AuditTrail
    # Crypto-shredding: the key settings (the worker's consumer builds its caching
    # resolver from them); the API's writer seals with no key cache.
    key_settings: EventKeySettings | None = None
    # Persons' data keys that seal the sensitive fields of cases at rest (the registry's
    # key service; no key stays in memory between requests).
    case_keys: DataKeySource | None = None
    # What the case shows of its referrals (bootstrap: the referrals feature's reader).
    case_referrals: CaseReferrals = no_referrals

    async def database_ready(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def close(self) -> None:
        await self.identity.aclose()
        await self.engine.dispose()
