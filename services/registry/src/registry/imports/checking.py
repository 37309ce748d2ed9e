"""Reading and checking an import's batches in a process forked per job, with a memory
limit, pipelined with the writes.

The file is untrusted input, read again for the run (the upload's first read was
another process, :mod:`registry.imports.bounded`): every read of its content for
the run (the header, then the records batch by batch from the job's position)
happens in one worker process forked per job, whose address space may grow by at
most ``REGISTRY_IMPORT_READER_MEMORY_BYTES`` (``RLIMIT_AS``). A file that needs more
(a row of millions of empty cells, a workbook part that inflates) fails there with
``MemoryError``, or the worker dies, and the runner sees
:class:`registry.imports.bounded.ReaderOutOfMemory`: the job fails with that reason,
the batches already committed stay, and the API process never held the data.

Validation (cell conversions, the registration's model, email and phone checks)
is pure CPU work and runs in the same worker, on the other core, while the event
loop writes the previous batch: per batch only the outcome comes back (valid rows
and row errors, never the cells of blank lines). The worker starts with the
parent's modules and reference data already loaded and is given the job's fixed
inputs (file, layout, decision, schema, jurisdictions) by the fork: nothing is
pickled for it. With ``REGISTRY_IMPORT_VALIDATION_PROCESS=false`` the worker only
reads (still bounded) and a thread of the parent checks the records it sends.
Where fork is not available (not Linux), one thread reads and checks, with the
limits on the file but no memory limit. Either way each record goes through
:func:`registry.imports.validation.check_record`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

from diaspora_identity.jurisdictions import Jurisdictions
from diaspora_identity.policy import Decision
from registry.imports.bounded import ReaderOutOfMemory, cap_memory
from registry.imports.bounded import fork_available as bounded_fork_available
from registry.imports.columns import Layout, layout
from registry.imports.reading import Format, Limits, Record, reopen_sheet
from registry.imports.validation import RowError, Schema, ValidRow, check_record

Checked = list[ValidRow | list[RowError]]
T = TypeVar("T")


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


@dataclass(frozen=True)
class CheckSpec:
    """A job's checks before its header is read (the layout comes from the header)."""

    schema: Schema
    jurisdictions: Jurisdictions
    decision: Decision
    extra_fields: Mapping[str, Any]

    def with_layout(self, columns: Layout) -> JobChecks:
        return JobChecks(columns, self.schema, self.jurisdictions, self.decision, self.extra_fields)


@dataclass(frozen=True)
class Source:
    """A job's file as uploaded, what its first read detected, and where the run resumes."""

    content: bytes
    format: Format
    encoding: str | None
    delimiter: str | None
    limits: Limits
    position: int  # records (blank lines included) done by earlier runs
    batch_size: int  # data rows per batch


@dataclass(frozen=True)
class Batch:
    """One batch as read (and checked) by the reader: never its cells once checked."""

    records: int  # records read (blank lines included): how far the position moves
    first_row: int
    last_row: int
    checked: Checked | None  # None when the parent checks ``unchecked``
    unchecked: tuple[Record, ...] = ()


def _batches(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    """Consecutive records holding ``size`` data rows each (blank lines ride along)."""
    batch: list[Record] = []
    rows = 0
    for record in records:
        batch.append(record)
        if not record.blank:
            rows += 1
        if rows == size:
            yield batch
            batch, rows = [], 0
    if batch:
        yield batch


class _Reader:
    """Where the file is read: the header once, then batch after batch, in file order."""

    def __init__(self, source: Source, spec: CheckSpec | None) -> None:
        self.source = source
        self.spec = spec  # None: the records go back unchecked
        self.checks: JobChecks | None = None
        self.batches: Iterator[list[Record]] = iter(())

    def open(self) -> tuple[str, ...]:
        """Read the header (as read at upload: nothing detected again); raises
        UnreadableFile, or ValueError when the header does not map onto fields."""
        s = self.source
        sheet = reopen_sheet(s.content, s.format, s.encoding, s.delimiter, s.limits)
        columns = layout(sheet.header)
        if self.spec is not None:
            self.checks = self.spec.with_layout(columns)
        self.batches = _batches(islice(sheet.records(), s.position, None), s.batch_size)
        return sheet.header

    def next(self) -> Batch | None:
        """The next batch, checked here if this reader checks; None after the last."""
        batch = next(self.batches, None)
        if batch is None:
            return None
        first, last = batch[0].row, batch[-1].row
        if self.checks is None:
            return Batch(len(batch), first, last, None, tuple(r for r in batch if not r.blank))
        return Batch(len(batch), first, last, self.checks.check(batch))


# The forked worker's reader (set once by its initializer; nothing is pickled for it).
_READER: _Reader | None = None


def _start_worker(reader: _Reader, parent: int, memory: int) -> None:
    global _READER
    _READER = reader
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

    threading.Thread(target=orphaned, name="import-reader-parent", daemon=True).start()
    # Last, once the thread (its stack) exists: from here on the budget is the file's.
    cap_memory(memory)


def _open_in_worker() -> tuple[str, ...]:
    assert _READER is not None, "the worker's initializer sets the reader"
    return _READER.open()


def _next_in_worker() -> Batch | None:
    assert _READER is not None, "the worker's initializer sets the reader"
    return _READER.next()


def fork_available() -> bool:
    return bounded_fork_available()


class JobFeed:
    """One job's batches, read (and checked) away from the event loop, in file order.

    ``isolate``: read in a forked worker capped at ``memory`` more bytes (where fork
    exists), else in a thread. ``check_in_reader``: check where the file is read, else
    in a thread of this process. Call :meth:`open` once, then :meth:`next` as often as
    wanted: reads run one at a time in call order; after the last batch, None.
    """

    def __init__(
        self,
        source: Source,
        spec: CheckSpec,
        *,
        memory: int,
        isolate: bool = True,
        check_in_reader: bool = True,
    ) -> None:
        self.spec = spec
        self.memory = memory
        self.forked = isolate and fork_available()
        reader = _Reader(source, spec if check_in_reader or not self.forked else None)
        self.checks: JobChecks | None = None  # the parent's, when it checks
        self._checks_here = reader.spec is None
        self._executor: Executor
        self._open: Callable[[], tuple[str, ...]]
        self._next: Callable[[], Batch | None]
        if self.forked:
            self._executor = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_start_worker,
                initargs=(reader, os.getpid(), memory),
            )
            self._open, self._next = _open_in_worker, _next_in_worker
        else:
            # One thread: the reader's iterator is never entered twice at once.
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-reader")
            self._open, self._next = reader.open, reader.next

    async def open(self) -> tuple[str, ...]:
        header = await self._guarded(self._submit(self._open))
        if self._checks_here:
            self.checks = self.spec.with_layout(layout(header))
        return header

    def next(self) -> asyncio.Future[Batch | None]:
        """Start reading the next batch (now, so that reads keep their call order)."""
        read = self._guarded(self._submit(self._next))
        if not self._checks_here:
            return asyncio.ensure_future(read)
        return asyncio.ensure_future(self._check_here(read))

    async def _check_here(self, read: Awaitable[Batch | None]) -> Batch | None:
        batch = await read
        if batch is None or batch.checked is not None:
            return batch
        assert self.checks is not None, "open() comes first"
        checked = await asyncio.to_thread(self.checks.check, batch.unchecked)
        return Batch(batch.records, batch.first_row, batch.last_row, checked)

    def _submit(self, function: Callable[[], T]) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(self._executor, function)

    async def _guarded(self, read: Awaitable[T]) -> T:
        try:
            return await read
        except (MemoryError, BrokenProcessPool) as error:
            raise ReaderOutOfMemory(str(error) or type(error).__name__) from None

    async def close(self) -> None:
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
