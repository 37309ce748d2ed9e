"""Checking an import's batches in a worker process, pipelined with the writes.

Validation (cell conversions, the registration's model, email and phone checks)
is pure CPU work. In a thread it shares the GIL with the batch being written in
the event loop; in a process of its own it runs on the other core. The worker is
forked once per job, so it starts with the parent's modules and reference data
already loaded, and is given the job's fixed inputs (layout, decision, schema,
jurisdictions) once: per batch only the records go out (row numbers and cells)
and the results come back. Where fork is not available, or when
``REGISTRY_IMPORT_VALIDATION_PROCESS=false``, a thread does the same work. Either
way each record goes through :func:`registry.imports.validation.check_record`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from diaspora_identity.jurisdictions import Jurisdictions
from diaspora_identity.policy import Decision
from registry.imports.columns import Layout
from registry.imports.reading import Record
from registry.imports.validation import RowError, Schema, ValidRow, check_record

Checked = list[ValidRow | list[RowError]]


@dataclass(frozen=True)
class JobChecks:
    """What every record of one job is checked against."""

    layout: Layout
    schema: Schema
    jurisdictions: Jurisdictions
    decision: Decision
    extra_fields: Mapping[str, Any]

    def check(self, records: Sequence[Record]) -> Checked:
        return [
            check_record(
                r,
                self.layout,
                schema=self.schema,
                jurisdictions=self.jurisdictions,
                decision=self.decision,
                extra_fields=self.extra_fields,
            )
            for r in records
            if not r.blank
        ]


# The forked worker's job (set once by its initializer; nothing is pickled for it).
_JOB: JobChecks | None = None


def _start_worker(job: JobChecks, parent: int) -> None:
    global _JOB
    _JOB = job
    # The fork copied the parent's signal handling: the asyncio loop's wakeup fd (a signal
    # here would wake the parent's loop) and its handlers. The parent stops the worker.
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def orphaned() -> None:
        # A parent killed outright (kill -9) cannot stop the worker: it leaves by itself.
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=orphaned, name="import-check-parent", daemon=True).start()


def _check_in_worker(rows: list[tuple[int, tuple[str, ...]]]) -> Checked:
    assert _JOB is not None, "the worker's initializer sets the job"
    return _JOB.check([Record(row, cells) for row, cells in rows])


def fork_available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


class BatchChecker:
    """Checks one job's batches; :meth:`check` starts a batch and returns its future."""

    def __init__(self, job: JobChecks, *, process: bool) -> None:
        self.job = job
        self._pool: ProcessPoolExecutor | None = None
        if process and fork_available():
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_start_worker,
                initargs=(job, os.getpid()),
            )

    def check(self, batch: Sequence[Record]) -> asyncio.Future[Checked]:
        if self._pool is None:
            # CPU work off the event loop, which may serve HTTP.
            return asyncio.ensure_future(asyncio.to_thread(self.job.check, batch))
        rows = [(r.row, r.cells) for r in batch if not r.blank]
        return asyncio.get_running_loop().run_in_executor(self._pool, _check_in_worker, rows)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
