"""Uploaded documents' rows and objects: record, list, find, delete, erase.

The HTTP layer (``consular.uploads``) decides who may act and checks the file
(``diaspora_documents.checks``) before calling here. An object is written to the store
before its row (a row never names bytes that were not stored); when the row's
transaction fails, the caller removes the object again (:func:`discard`). Removing a
document removes its row, then its object: a failure in between leaves an orphan object
(harmless: nothing names it), never a row without bytes that a later call would trust.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import structlog
from sqlalchemy import and_, column, delete, func, or_, select, table, update
from sqlalchemy.ext.asyncio import AsyncSession

from consular.documents.tables import documents
from diaspora_documents.store import ObjectStore, StoredObject

log = structlog.get_logger(__name__)

Owner = Literal["application", "report"]
# A report's documents all have this kind.
ATTACHMENT = "attachment"
# The applications' status, for erasure (named here: applications are the layer above).
_APPLICATIONS = table("applications", column("id"), column("status"))


@dataclass(frozen=True)
class Uploader:
    subject: str
    role: str


def new_key(owner: Owner, owner_id: UUID) -> tuple[UUID, str]:
    """A new document's id and its object's key (``applications/<id>/<document id>``)."""
    document_id = uuid.uuid4()
    return document_id, f"{owner}s/{owner_id}/{document_id}"


async def record(
    session: AsyncSession,
    *,
    document_id: UUID,
    owner: Owner,
    owner_id: UUID,
    member_id: UUID | None,
    kind: str,
    filename: str | None,
    stored: StoredObject,
    uploader: Uploader,
    now: datetime,
) -> dict[str, Any]:
    """The row of a document whose bytes ``stored`` describes."""
    values: dict[str, Any] = {
        "id": document_id,
        "application_id": owner_id if owner == "application" else None,
        "report_id": owner_id if owner == "report" else None,
        "member_id": member_id,
        "kind": kind,
        "filename": filename,
        "content_type": stored.content_type,
        "size": stored.size,
        "sha256": stored.sha256,
        "storage_key": stored.key,
        "uploaded_by": uploader.subject,
        "uploaded_by_role": uploader.role,
        "uploaded_at": now,
    }
    await session.execute(documents.insert().values(**values))
    return values


def _owned_by(owner: Owner, owner_id: UUID) -> Any:
    column = documents.c.application_id if owner == "application" else documents.c.report_id
    return column == owner_id


async def count(session: AsyncSession, owner: Owner, owner_id: UUID) -> int:
    found = await session.execute(
        select(func.count()).select_from(documents).where(_owned_by(owner, owner_id))
    )
    return int(found.scalar_one())


async def listing(session: AsyncSession, owner: Owner, owner_id: UUID) -> list[dict[str, Any]]:
    """A case's documents, oldest first."""
    rows = await session.execute(
        select(documents)
        .where(_owned_by(owner, owner_id))
        .order_by(documents.c.uploaded_at, documents.c.id)
    )
    return [dict(r) for r in rows.mappings()]


async def find(
    session: AsyncSession, owner: Owner, owner_id: UUID, document_id: UUID
) -> dict[str, Any] | None:
    """One document of the case (None: not this case's)."""
    row = (
        (
            await session.execute(
                select(documents).where(documents.c.id == document_id, _owned_by(owner, owner_id))
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


async def missing_kinds(
    session: AsyncSession, application_id: UUID, required: Sequence[str]
) -> list[str]:
    """The required-document codes of which the application has no document yet (in the
    catalogue's order)."""
    present = set(
        (
            await session.execute(
                select(documents.c.kind).where(documents.c.application_id == application_id)
            )
        ).scalars()
    )
    return [code for code in required if code not in present]


async def discard(store: ObjectStore, key: str) -> None:
    """Remove an object whose row was not written (the upload's transaction failed)."""
    try:
        await store.delete(key)
    except Exception:  # the upload's own error is what the caller reports
        log.warning("document_object_not_removed", key=key, exc_info=True)


async def remove(session: AsyncSession, store: ObjectStore, row: dict[str, Any]) -> None:
    """Delete one document: its row, then its object."""
    await session.execute(delete(documents).where(documents.c.id == row["id"]))
    await store.delete(row["storage_key"])


async def erase_member_documents(
    session: AsyncSession,
    store: ObjectStore,
    member_id: UUID,
    *,
    application_statuses: Collection[str] | None = None,
) -> int:
    """Remove the stored documents of a registry member (erasure): the objects and the
    rows of the documents of their applications and of their difficulty reports.

    ``application_statuses``: only the documents of applications in these statuses (e.g.
    the erasable ``draft``, ``withdrawn``, ``expired``), the documents of applications
    kept as the embassy's records staying with them; None: every application's. A
    report's documents always go. Returns how many were removed. Call it in the erasure's
    transaction, *before* deleting the applications themselves (their rows would go by
    cascade, leaving the objects)."""
    condition: Any = documents.c.member_id == member_id
    if application_statuses is not None:
        cases = select(_APPLICATIONS.c.id).where(
            _APPLICATIONS.c.status.in_(sorted(application_statuses))
        )
        condition = and_(
            condition,
            or_(
                documents.c.report_id.is_not(None),
                documents.c.application_id.in_(cases),
            ),
        )
    removed = await session.execute(
        delete(documents).where(condition).returning(documents.c.storage_key)
    )
    keys = list(removed.scalars())
    for key in keys:
        await store.delete(key)
    return len(keys)


async def merge_member(session: AsyncSession, absorbed: UUID, survivor: UUID) -> None:
    """A registry merge: the absorbed record's documents are the survivor's."""
    await session.execute(
        update(documents).where(documents.c.member_id == absorbed).values(member_id=survivor)
    )
