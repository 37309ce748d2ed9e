"""The consular service's handles: settings, database, outbox, identity, audit trail.

Built once by ``consular.bootstrap``; routes get them through ``consular.deps``,
consumers and jobs from the bootstrap that builds them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from consular.settings import ConsularSettings
from consular.signing_keys import KeyRing
from diaspora_events.outbox import OutboxWriter
from diaspora_events.shredding import EventKeySettings
from diaspora_identity.audit import AuditTrail
from diaspora_identity.http import Identity

# Called in the transaction of an application's `issue` transition, with the application
# as changed (status `issued`) and the time: the credentials feature signs one there.
IssuedHook = Callable[[AsyncSession, OutboxWriter, dict[str, Any], datetime], Awaitable[None]]
# Called in the transaction of a transition that closes an application without a decision
# (withdrawn, expired), with the application as changed: the appointments feature gives
# its booked seat back there.
ClosedHook = Callable[[AsyncSession, OutboxWriter, dict[str, Any], datetime], Awaitable[None]]


@dataclass
class Consular:
    settings: ConsularSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    outbox: OutboxWriter
    identity: Identity
    # Staff reads and changes: the service's ``audit_log`` and its outbox.
    audit: AuditTrail
    # Crypto-shredding: the key settings (the worker's consumer builds its caching
    # resolver from them); the API's writer seals with no key cache.
    key_settings: EventKeySettings | None = None
    # Issued credentials: the ministry's signing key and published keys, and the hook
    # that signs a credential when an application is issued (consular.credentials).
    credential_keys: KeyRing | None = None
    on_issued: IssuedHook | None = None
    # Seats given back when an application is withdrawn or expires (consular.appointments).
    on_closed: ClosedHook | None = None

    async def database_ready(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def close(self) -> None:
        await self.identity.aclose()
        await self.engine.dispose()
