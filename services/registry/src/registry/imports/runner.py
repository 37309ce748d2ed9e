"""The import runner: processes queued imports batch by batch, resumable after a crash.

Each batch is one transaction: the members it registers (with their events,
audit entries and match keys), the duplicate cases it opens, its error rows and
the job's new counters and position. A crash loses at most the batch in
flight, which was never committed; the next runner resumes at the position
recorded by the last committed batch, so no row is imported twice and none is
lost. One runner works on a job at a time: it holds a PostgreSQL advisory lock
on the job for as long as it works on it, released by the server when the
runner's connection ends (even by kill -9).

Counters always add up: every data row ends up in exactly one of ``accepted``
(registered), ``duplicates`` (registered and flagged for review) or
``rejected`` (not registered, with at least one line in the error report).
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from diaspora_identity.audit import AccessContext
from diaspora_identity.policy import Decision, Forbidden
from diaspora_identity.principal import Principal, Role
from registry.heap import freeze_long_lived
from registry.imports.bounded import ReaderOutOfMemory
from registry.imports.checking import Batch, CheckSpec, JobFeed, Source
from registry.imports.reading import UnreadableFile
from registry.imports.registration import (
    PreparedRows,
    prepare_rows,
    registration_schema,
    write_rows,
)
from registry.imports.settings import ImportSettings
from registry.imports.tables import import_errors, import_jobs
from registry.imports.validation import RowError, ValidRow
from registry.resources import Registry

log = structlog.get_logger(__name__)

_LOCK_SPACE = 0x1D_0917  # advisory lock namespace of import jobs


def _lock_key(job_id: UUID) -> int:
    return zlib.crc32(job_id.bytes) - 2**31


def _principal(job: Any) -> Principal:
    roles = frozenset(Role(r) for r in job.created_by_roles if r in Role.__members__.values())
    return Principal(subject=job.created_by, roles=roles, embassies=frozenset(job.embassies or ()))


@dataclass(frozen=True)
class Staged:
    """A batch checked and its rows prepared, ready for its transaction."""

    records: int  # records read (blank lines included): how far the position moves
    rows: int  # data rows
    valid: int  # rows registered
    errors: list[RowError]
    rejected: bool  # all or nothing: the whole batch refused
    prepared: PreparedRows | None


class ImportRunner:
    def __init__(self, registry: Registry, settings: ImportSettings | None = None) -> None:
        self.registry = registry
        self.settings = settings or ImportSettings()
        self.wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set: pending jobs first, then whenever woken or polled."""
        while not stop.is_set():
            try:
                await self.run_pending()
            except Exception:
                log.exception("import_runner_pass_failed")
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    _first(stop.wait(), self.wake.wait()), timeout=self.settings.poll_seconds
                )

    async def run_pending(self) -> int:
        """Process every queued or interrupted job this runner can lock; returns how many."""
        async with self.registry.sessions() as session:
            pending = (
                (
                    await session.execute(
                        select(import_jobs.c.id)
                        .where(import_jobs.c.status.in_(("queued", "running")))
                        .order_by(import_jobs.c.created_at)
                    )
                )
                .scalars()
                .all()
            )
        done = 0
        for job_id in pending:
            if await self.process(job_id):
                done += 1
        return done

    async def process(self, job_id: UUID) -> bool:
        """Process one job to its end if no other runner holds it; False when it was held."""
        async with self.registry.engine.connect() as lock:
            held = (
                await lock.execute(
                    text("SELECT pg_try_advisory_lock(:space, :key)"),
                    {"space": _LOCK_SPACE, "key": _lock_key(job_id)},
                )
            ).scalar_one()
            await lock.commit()
            if not held:
                return False
            try:
                await self._process_locked(job_id)
            finally:
                await _unlock(lock, job_id)
        return True

    async def _process_locked(self, job_id: UUID) -> None:
        async with self.registry.sessions() as session:
            job = (
                await session.execute(select(import_jobs).where(import_jobs.c.id == job_id))
            ).first()
        if job is None or job.status not in ("queued", "running"):
            return
        log.info("import_started", job_id=str(job_id), position=job.position)
        await self._set(job_id, status="running", started_at=job.started_at or _now())
        try:
            decision = self.registry.identity.policy.decide(
                _principal(job), "member_import", "create"
            )
        except Forbidden as error:
            await self._set(job_id, status="failed", error=str(error), finished_at=_now())
            return
        context = AccessContext(request_id=f"import:{job_id}")
        # Every read of the file (its header, then its records from the job's position)
        # happens in a worker forked for the job, with the memory limit of the upload's
        # first read; the worker checks the batches ahead (on the other core) while the
        # current one is written: the writes stay one transaction per batch, in order.
        feed = JobFeed(
            # As read at upload (format, encoding and delimiter kept with the job: nothing
            # detected again), within the limits checked then.
            Source(
                content=job.content,
                format=job.format,
                encoding=job.encoding,
                delimiter=job.delimiter,
                limits=self.settings.limits(),
                position=job.position,
                batch_size=job.batch_size,
            ),
            CheckSpec(
                schema=registration_schema(),
                jurisdictions=self.registry.identity.jurisdictions,
                decision=decision,
                # The uploader's attestation, as an officer gives it for one assisted
                # registration.
                extra_fields={
                    "consent_recorded": {"method": job.consent_method}
                    | ({"reference": job.consent_reference} if job.consent_reference else {})
                },
            ),
            memory=self.settings.reader_memory_bytes,
            check_in_reader=self.settings.validation_process,
        )
        try:
            try:
                await feed.open()
            except (UnreadableFile, ValueError) as error:
                await self._set(job_id, status="failed", error=str(error), finished_at=_now())
                return
            await self._run_batches(job, decision, context, feed)
        except ReaderOutOfMemory:
            # The batches committed before stay (counters and position say how far).
            log.warning("import_reader_out_of_memory", job_id=str(job_id))
            await self._fail_midway(job_id, self._out_of_memory())
            return
        except UnreadableFile as error:
            await self._fail_midway(job_id, str(error))
            return
        finally:
            await feed.close()
        await self._set(job_id, status="done", finished_at=_now(), content=None)
        log.info("import_finished", job_id=str(job_id))

    def _out_of_memory(self) -> str:
        return (
            f"reading the file needs more than {self.settings.reader_memory_bytes} bytes of "
            "memory (REGISTRY_IMPORT_READER_MEMORY_BYTES): save it as CSV or split it"
        )

    async def _fail_midway(self, job_id: UUID, reason: str) -> None:
        """The job stops for good at the batch the reader could not read."""
        async with self.registry.sessions() as session:
            position = (
                await session.execute(
                    select(import_jobs.c.processed_rows).where(import_jobs.c.id == job_id)
                )
            ).scalar_one()
        if position:
            reason += f" (stopped after {position} rows; the rows before are processed)"
        await self._set(job_id, status="failed", error=reason, finished_at=_now())

    async def _run_batches(
        self, job: Any, decision: Decision, context: AccessContext, feed: JobFeed
    ) -> None:
        # Three stages at once: the worker reads and checks the batches ahead, the event
        # loop prepares the next batch's rows (CPU) while the current one's statements are
        # with PostgreSQL, and the writes stay one transaction per batch, in file order.
        reads: deque[asyncio.Future[Batch | None]] = deque(feed.next() for _ in range(2))

        async def stage_next() -> Staged | None:
            batch = await reads.popleft()
            if batch is None:
                return None
            reads.append(feed.next())
            return await self._stage(job, decision, context, batch)

        staging = asyncio.ensure_future(stage_next())
        first = True
        try:
            while (staged := await staging) is not None:
                staging = asyncio.ensure_future(stage_next())
                await self._write(job, staged)
                if first:
                    # The reference data the first batch loaded stays: out of the collector's way.
                    freeze_long_lived()
                    first = False
        except BaseException:
            in_flight: list[asyncio.Future[Any]] = [staging, *reads]
            for pending in in_flight:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            raise

    async def _stage(
        self, job: Any, decision: Decision, context: AccessContext, batch: Batch
    ) -> Staged:
        """A checked batch's outcome and the rows it writes, prepared before its
        transaction."""
        checked = batch.checked
        assert checked is not None, "the feed checks every batch"
        valid = [c for c in checked if isinstance(c, ValidRow)]
        errors = [e for c in checked if not isinstance(c, ValidRow) for e in c]
        rejected_batch = job.mode == "all_or_nothing" and len(valid) < len(checked)
        if rejected_batch:
            reason = (
                f"not imported: rows {batch.first_row} to {batch.last_row} were rejected "
                "together (all or nothing) because some of them are invalid"
            )
            errors = sorted(
                errors + [RowError(v.row, None, reason) for v in valid], key=lambda e: e.row
            )
            valid = []
        prepared = await prepare_rows(
            decision=decision,
            context=context,
            rows=valid,
            consent_method=job.consent_method,
            consent_reference=job.consent_reference,
        )
        return Staged(batch.records, len(checked), len(valid), errors, rejected_batch, prepared)

    async def _write(self, job: Any, staged: Staged) -> None:
        """One batch's transaction: its members, error rows and the job's counters."""
        async with self.registry.sessions() as session, session.begin():
            flagged = await write_rows(
                session,
                registry=self.registry,
                prepared=staged.prepared,
                import_job_id=job.id,
            )
            if staged.errors:
                await session.execute(
                    import_errors.insert(),
                    [
                        {
                            "job_id": job.id,
                            "row_number": e.row,
                            "column_name": e.column,
                            "reason": e.reason,
                        }
                        for e in staged.errors
                    ],
                )
            await session.execute(
                update(import_jobs)
                .where(import_jobs.c.id == job.id)
                .values(
                    position=import_jobs.c.position + staged.records,
                    processed_rows=import_jobs.c.processed_rows + staged.rows,
                    accepted=import_jobs.c.accepted + staged.valid - flagged,
                    duplicates=import_jobs.c.duplicates + flagged,
                    rejected=import_jobs.c.rejected + staged.rows - staged.valid,
                    rejected_batches=import_jobs.c.rejected_batches + int(staged.rejected),
                    updated_at=_now(),
                )
            )

    async def _set(self, job_id: UUID, **values: Any) -> None:
        async with self.registry.sessions() as session, session.begin():
            await session.execute(
                update(import_jobs)
                .where(import_jobs.c.id == job_id)
                .values(**values, updated_at=_now())
            )


async def _unlock(lock: AsyncConnection, job_id: UUID) -> None:
    with contextlib.suppress(Exception):
        await lock.execute(
            text("SELECT pg_advisory_unlock(:space, :key)"),
            {"space": _LOCK_SPACE, "key": _lock_key(job_id)},
        )
        await lock.commit()


async def _first(*waits: Any) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def _now() -> datetime:
    return datetime.now(UTC)
