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
from registry.imports.bounded import ReaderOutOfMemory, run_bounded
from registry.imports.columns import BY_FIELD, DuplicateColumn, layout
from registry.imports.reading import (
    DEFAULT_LIMITS,
    Format,
    Limits,
    Sheet,
    TooLargeWhenRead,
    UnreadableFile,
    open_sheet,
)
from registry.imports.settings import ImportSettings
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
    """The file cannot be imported at all (unreadable, required columns missing, too big).

    ``status``: 422, or 413 when the file would expand beyond the limits when read."""

    def __init__(self, reason: str, *, status: int = 422, **details: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.details = details

    def __reduce__(self) -> tuple[Any, ...]:  # back from the reader process, details included
        return (_invalid_import, (str(self), self.status, self.details))


def _invalid_import(reason: str, status: int, details: dict[str, Any]) -> InvalidImport:
    return InvalidImport(reason, status=status, **details)


class IdempotencyConflict(Exception):
    pass


@dataclass(frozen=True)
class Counted:
    sheet: Sheet
    total_rows: int
    blank_rows: int
    ignored: tuple[str, ...]


@dataclass(frozen=True)
class Summary:
    """What the first full read of a file found (no rows: it crosses processes)."""

    format: Format
    encoding: str | None
    delimiter: str | None
    header: tuple[str, ...]
    total_rows: int
    blank_rows: int
    ignored: tuple[str, ...]


def summarise(
    content: bytes, filename: str | None, *, max_rows: int, limits: Limits = DEFAULT_LIMITS
) -> Summary:
    """Read the whole file once: format, header, required columns, number of rows, each
    row within ``limits``. CPU- and memory-bound: see :func:`inspect_upload`. Raises
    :class:`InvalidImport`."""
    try:
        sheet = open_sheet(content, filename, limits)
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
    except TooLargeWhenRead as error:
        raise InvalidImport(str(error), status=413) from None
    except (UnreadableFile, DuplicateColumn) as error:
        raise InvalidImport(str(error)) from None
    if total == 0:
        raise InvalidImport("the file has a header but no rows")
    return Summary(
        sheet.format, sheet.encoding, sheet.delimiter, sheet.header, total, blank, columns.ignored
    )


def _counted(content: bytes, summary: Summary, limits: Limits) -> Counted:
    sheet = Sheet(
        summary.format, summary.encoding, summary.delimiter, summary.header, content, limits
    )
    return Counted(sheet, summary.total_rows, summary.blank_rows, summary.ignored)


def inspect_file(
    content: bytes, filename: str | None, *, max_rows: int, limits: Limits = DEFAULT_LIMITS
) -> Counted:
    """:func:`summarise` in this process (tools and tests; the API uses inspect_upload)."""
    return _counted(content, summarise(content, filename, max_rows=max_rows, limits=limits), limits)


async def inspect_upload(content: bytes, filename: str | None, settings: ImportSettings) -> Counted:
    """:func:`summarise` in a process forked for it, with a memory limit
    (:mod:`registry.imports.bounded`): the API process never inflates the file."""
    limits = settings.limits()
    try:
        summary = await run_bounded(
            settings.reader_memory_bytes,
            summarise,
            content,
            filename,
            max_rows=settings.max_rows,
            limits=limits,
        )
    except ReaderOutOfMemory:
        raise InvalidImport(
            f"reading the file needs more than {settings.reader_memory_bytes} bytes of "
            "memory: save it as CSV or split it",
            status=413,
        ) from None
    return _counted(content, summary, limits)


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
