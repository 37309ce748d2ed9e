"""Import jobs: accept a file (checked up front), read progress, write the error report."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

import uuid_utils.compat as uuid_compat
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from diaspora_identity.policy import Decision, Scope
from registry.imports.columns import BY_FIELD, DuplicateColumn, layout
from registry.imports.reading import Sheet, UnreadableFile, open_sheet
from registry.imports.tables import import_errors, import_jobs

Mode = Literal["all_or_nothing", "partial"]
# How the people listed consented to being registered (an assisted registration's methods).
ConsentMethod = Literal["signed_form", "in_person"]

JOB_FIELDS = (
    "id",
    "status",
    "mode",
    "filename",
    "format",
    "encoding",
    "delimiter",
    "batch_size",
    "consent_method",
    "consent_reference",
    "total_rows",
    "blank_rows",
    "processed_rows",
    "accepted",
    "rejected",
    "duplicates",
    "rejected_batches",
    "ignored_columns",
    "error",
    "created_by",
    "created_at",
    "started_at",
    "finished_at",
    "updated_at",
)
SCOPE_COLUMNS = {"created_by": import_jobs.c.created_by}


class InvalidImport(ValueError):
    """The file cannot be imported at all (unreadable, required columns missing, too big)."""

    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.details = details


class IdempotencyConflict(Exception):
    pass


@dataclass(frozen=True)
class Counted:
    sheet: Sheet
    total_rows: int
    blank_rows: int
    ignored: tuple[str, ...]


def inspect_file(content: bytes, filename: str | None, *, max_rows: int) -> Counted:
    """Read the whole file once: format, header, required columns, number of rows.

    CPU-bound: call it in a worker thread. Raises :class:`InvalidImport`.
    """
    try:
        sheet = open_sheet(content, filename)
        columns = layout(sheet.header)
        if columns.missing:
            expected = {f: list(BY_FIELD[f].aliases[:3]) for f in columns.missing}
            raise InvalidImport(
                "required columns are missing: " + ", ".join(columns.missing),
                missing_columns=list(columns.missing),
                accepted_headers=expected,
            )
        total = blank = 0
        for record in sheet.records():
            if record.blank:
                blank += 1
            else:
                total += 1
            if total > max_rows:
                raise InvalidImport(f"more than {max_rows} rows: split the file")
    except (UnreadableFile, DuplicateColumn) as error:
        raise InvalidImport(str(error)) from None
    if total == 0:
        raise InvalidImport("the file has a header but no rows")
    return Counted(sheet, total, blank, columns.ignored)


def _digest(content: bytes, mode: str, batch_size: int) -> str:
    return hashlib.sha256(b"%s|%d|" % (mode.encode(), batch_size) + content).hexdigest()


async def create_job(
    *,
    sessions: async_sessionmaker[AsyncSession],
    decision: Decision,
    counted: Counted,
    filename: str | None,
    mode: Mode,
    batch_size: int,
    consent_method: ConsentMethod,
    consent_reference: str | None,
    idempotency_key: str | None,
) -> tuple[dict[str, Any], bool]:
    """Queue an import; returns the job and whether it was created now (else: replayed key)."""
    principal = decision.principal
    all_countries = any(g.grant.scope is Scope.ALL for g in decision.grants)
    digest = _digest(
        counted.sheet.content, f"{mode}|{consent_method}|{consent_reference}", batch_size
    )
    job_id = uuid_compat.uuid7()
    row = {
        "id": job_id,
        "created_by": principal.subject,
        "created_by_roles": decision.roles,
        "embassies": None if all_countries else sorted(principal.embassies),
        "filename": filename,
        "format": counted.sheet.format,
        "encoding": counted.sheet.encoding,
        "delimiter": counted.sheet.delimiter,
        "mode": mode,
        "batch_size": batch_size,
        "consent_method": consent_method,
        "consent_reference": consent_reference,
        "status": "queued",
        "total_rows": counted.total_rows,
        "blank_rows": counted.blank_rows,
        "ignored_columns": list(counted.ignored),
        "content": counted.sheet.content,
        "idempotency_key": idempotency_key,
        "request_digest": digest,
    }
    if idempotency_key:
        existing = await _by_key(sessions, principal.subject, idempotency_key, digest)
        if existing is not None:
            return existing, False
    try:
        async with sessions() as session, session.begin():
            await session.execute(import_jobs.insert().values(**row))
    except IntegrityError:
        if idempotency_key:
            existing = await _by_key(sessions, principal.subject, idempotency_key, digest)
            if existing is not None:
                return existing, False
        raise
    job = await read_job(sessions=sessions, decision=None, job_id=job_id)
    assert job is not None
    return job, True


async def _by_key(
    sessions: async_sessionmaker[AsyncSession], subject: str, key: str, digest: str
) -> dict[str, Any] | None:
    async with sessions() as session:
        found = (
            await session.execute(
                select(import_jobs.c.id, import_jobs.c.request_digest).where(
                    import_jobs.c.created_by == subject, import_jobs.c.idempotency_key == key
                )
            )
        ).first()
    if found is None:
        return None
    if found.request_digest != digest:
        raise IdempotencyConflict(key)
    return await read_job(sessions=sessions, decision=None, job_id=found.id)


async def read_job(
    *, sessions: async_sessionmaker[AsyncSession], decision: Decision | None, job_id: UUID
) -> dict[str, Any] | None:
    """The job's progress (no personal data), if the caller may see it."""
    statement = select(*(import_jobs.c[f] for f in JOB_FIELDS)).where(import_jobs.c.id == job_id)
    if decision is not None:
        statement = statement.where(decision.where(SCOPE_COLUMNS))
    async with sessions() as session:
        found = (await session.execute(statement)).mappings().first()
    return dict(found) if found else None


async def error_report(
    *, sessions: async_sessionmaker[AsyncSession], job_id: UUID, chunk: int = 5_000
) -> AsyncIterator[str]:
    """The error report as CSV text (row, column, reason), in row order, streamed."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["row", "column", "reason"])
    yield out.getvalue()
    last = 0
    while True:
        async with sessions() as session:
            rows = (
                await session.execute(
                    select(
                        import_errors.c.id,
                        import_errors.c.row_number,
                        import_errors.c.column_name,
                        import_errors.c.reason,
                    )
                    .where(import_errors.c.job_id == job_id, import_errors.c.id > last)
                    .order_by(import_errors.c.id)
                    .limit(chunk)
                )
            ).all()
        if not rows:
            return
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for row in rows:
            writer.writerow([row.row_number, _safe(row.column_name or ""), _safe(row.reason)])
        last = rows[-1].id
        yield out.getvalue()


def _safe(text: str) -> str:
    """No spreadsheet formulas (CSV injection) from column names the uploader chose."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
