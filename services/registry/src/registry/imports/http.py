"""Bulk imports over HTTP: upload a list (202 + job), follow its progress, get its error report.

The import runner (registry.imports.runner) works in the background of this
process, started with the app; every instance of the API runs one, and a job is
worked on by one of them at a time (``REGISTRY_IMPORT_RUNNER=false`` turns it
off on an instance).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import structlog
from fastapi import APIRouter, FastAPI, File, Form, Header, Request, Response, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from diaspora_identity.http import AUTH_RESPONSES, CurrentPrincipal
from diaspora_service.problems import Problem
from diaspora_service.text import SingleLine
from registry.deps import registry_of
from registry.imports.jobs import (
    IdempotencyConflict,
    InvalidImport,
    create_job,
    error_report,
    inspect_upload,
    read_job,
)
from registry.imports.runner import ImportRunner
from registry.imports.settings import ImportSettings
from registry.resources import Registry

log = structlog.get_logger(__name__)
_PREFIX = re.compile(r"(/[A-Za-z0-9._-]+){0,4}")


@asynccontextmanager
async def _runner_lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = ImportSettings()
    registry: Registry = app.state.service
    runner = ImportRunner(registry, settings)
    app.state.import_runner = runner
    if not settings.runner:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop), name="import-runner")
    try:
        yield
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


router = APIRouter(prefix="/imports", tags=["imports"], lifespan=_runner_lifespan)


class ImportJob(BaseModel):
    """An import and its progress. `accepted + duplicates + rejected = processed_rows`;
    at the end `processed_rows = total_rows`."""

    id: UUID
    status: Literal["queued", "running", "done", "failed"]
    mode: Literal["all_or_nothing", "partial"]
    filename: str | None
    format: Literal["csv", "xlsx"]
    encoding: str | None = Field(description="How a CSV file was decoded.")
    delimiter: str | None
    batch_size: int
    consent_method: Literal["signed_form", "in_person"]
    consent_reference: str | None
    total_rows: int = Field(description="Data rows in the file (blank lines not counted).")
    blank_rows: int = Field(description="Lines with no value at all, skipped.")
    processed_rows: int
    accepted: int = Field(description="Rows registered as members.")
    duplicates: int = Field(
        description="Rows registered as members and flagged as likely duplicates for review."
    )
    rejected: int = Field(description="Rows not registered; each is in the error report.")
    rejected_batches: int = Field(description="Batches refused whole (all_or_nothing).")
    ignored_columns: list[str] = Field(description="Columns of the file that are not imported.")
    error: str | None = Field(description="Why the import stopped, if it failed.")
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime | None
    errors_url: str


def _prefix(request: Request) -> str:
    prefix = request.headers.get("x-forwarded-prefix", "")
    return prefix if _PREFIX.fullmatch(prefix) else ""


def _view(job: dict[str, Any], request: Request) -> ImportJob:
    return ImportJob(**job, errors_url=f"{_prefix(request)}/imports/{job['id']}/errors.csv")


@router.post(
    "",
    status_code=202,
    response_model=ImportJob,
    responses={
        **AUTH_RESPONSES,
        413: {
            "description": "The file is larger than the import limit, or would expand "
            "beyond the reading limits (XLSX decompression, reader memory)"
        },
        422: {"description": "The file cannot be imported (unreadable, columns missing)"},
    },
)
async def upload(
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    file: Annotated[UploadFile, File(description="CSV (UTF-8 or Windows-1252, ; or ,) or XLSX")],
    consent_method: Annotated[
        Literal["signed_form", "in_person"],
        Form(
            description="How the people listed consented to being registered (the embassy "
            "keeps the signed forms or registered them in person)."
        ),
    ],
    mode: Annotated[
        Literal["all_or_nothing", "partial"],
        Form(
            description="all_or_nothing: a batch with an invalid row is rejected whole; "
            "partial: valid rows are registered, invalid ones reported."
        ),
    ] = "partial",
    consent_reference: Annotated[
        SingleLine | None,
        Form(max_length=100, description="Where the consents are kept, e.g. a register number."),
    ] = None,
    batch_size: Annotated[int | None, Form(ge=1, le=10_000)] = None,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> ImportJob:
    """Import a list of members (CSV or XLSX): checked now, processed in the background."""
    registry = registry_of(request)
    runner: ImportRunner = request.app.state.import_runner
    settings = runner.settings
    decision = registry.identity.policy.decide(principal, "member_import", "create")
    content = await file.read(settings.max_bytes + 1)
    if len(content) > settings.max_bytes:
        raise Problem(
            413, "File too large", detail=f"Imports are limited to {settings.max_bytes} bytes."
        )
    try:
        # In a forked process with a memory limit: never the API's own memory.
        counted = await inspect_upload(content, file.filename, settings)
    except InvalidImport as error:
        title = "File too large when read" if error.status == 413 else "File cannot be imported"
        raise Problem(error.status, title, detail=str(error), **error.details) from None
    try:
        job, created = await create_job(
            sessions=registry.sessions,
            decision=decision,
            counted=counted,
            filename=(file.filename or "")[:200] or None,
            mode=mode,
            batch_size=batch_size or settings.batch_size,
            consent_method=consent_method,
            consent_reference=consent_reference,
            idempotency_key=idempotency_key,
        )
    except IdempotencyConflict:
        raise Problem(
            422,
            "Idempotency-Key already used",
            detail="This Idempotency-Key was used for a different upload; use a new key.",
        ) from None
    if created:
        runner.wake.set()
    else:
        response.status_code = 200
    response.headers["Location"] = f"{_prefix(request)}/imports/{job['id']}"
    log.info("import_queued", job_id=str(job["id"]), rows=job["total_rows"], mode=mode)
    return _view(job, request)


@router.get(
    "/{job_id}",
    response_model=ImportJob,
    responses={**AUTH_RESPONSES, 404: {"description": "No such import within your scope"}},
)
async def progress(job_id: UUID, request: Request, principal: CurrentPrincipal) -> ImportJob:
    """An import's progress: rows processed out of the total, accepted, duplicates, rejected."""
    registry = registry_of(request)
    decision = registry.identity.policy.decide(principal, "member_import", "read")
    job = await read_job(sessions=registry.sessions, decision=decision, job_id=job_id)
    if job is None:
        raise Problem(404, "Import not found")
    return _view(job, request)


@router.get(
    "/{job_id}/errors.csv",
    response_class=StreamingResponse,
    responses={
        **AUTH_RESPONSES,
        200: {"content": {"text/csv": {}}, "description": "row, column, reason per problem"},
        404: {"description": "No such import within your scope"},
    },
)
async def errors_csv(job_id: UUID, request: Request, principal: CurrentPrincipal) -> Response:
    """The error report: one line per problem (row number, column, reason), no cell values."""
    registry = registry_of(request)
    decision = registry.identity.policy.decide(principal, "member_import", "read")
    job = await read_job(sessions=registry.sessions, decision=decision, job_id=job_id)
    if job is None:
        raise Problem(404, "Import not found")
    return StreamingResponse(
        error_report(sessions=registry.sessions, job_id=job_id),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="import-{job_id}-errors.csv"',
            "Cache-Control": "no-store",
        },
    )
