"""The consular service's handles: settings, database, outbox, identity, audit trail.

Built once by ``consular.bootstrap``; routes get them through ``consular.deps``,
consumers and jobs from the bootstrap that builds them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from consular.settings import ConsularSettings
from consular.signing_keys import KeyRing
from diaspora_documents.settings import StoreSettings, open_store
from diaspora_documents.store import ObjectStore
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

# Called in the transaction of every officer's or authority's transition, after its row,
# history and event are written, with the application before and after, the action and the
# time: payments refuse an approval while the fee is unpaid (raising TransitionBlocked:
# the transaction is rolled back), the hand-over builds its package on approval.
TransitionHook = Callable[
    [AsyncSession, OutboxWriter, dict[str, Any], dict[str, Any], str, datetime], Awaitable[None]
]


class TransitionBlocked(Exception):
    """A feature refuses a transition the state machine allows (answered 409)."""

    def __init__(self, title: str, detail: str, problem_type: str, **extra: Any) -> None:
        super().__init__(detail)
        self.title = title
        self.detail = detail
        self.problem_type = problem_type
        self.extra = extra


@dataclass
class DocumentStore:
    """The object store of uploaded documents, opened on first use (an S3 client needs a
    running event loop) and closed with the service."""

    settings: StoreSettings
    _store: ObjectStore | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def get(self) -> ObjectStore:
        if self._store is None:
            async with self._lock:
                if self._store is None:
                    self._store = await open_store(self.settings)
        return self._store

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
            self._store = None


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
    # Payments' guard and the hand-over package (composed by bootstrap.py).
    on_transition: TransitionHook | None = None
    # Uploaded documents' bytes (consular.documents): a local folder or S3, as set.
    documents: DocumentStore | None = None

    async def database_ready(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def close(self) -> None:
        await self.identity.aclose()
        if self.documents is not None:
            await self.documents.close()
        await self.engine.dispose()
