"""Reading an uploaded file in a process of its own, with a memory limit.

A spreadsheet is untrusted input: a small XLSX can inflate to gigabytes, a CSV can
hold millions of cells. The upload's first full read (format, header, every row
counted and checked against :class:`registry.imports.reading.Limits`) runs in a
process forked for it, whose address space may grow by at most
``REGISTRY_IMPORT_READER_MEMORY_BYTES`` beyond what it inherited (``RLIMIT_AS``): a
file that needs more fails there with ``MemoryError`` (a 413 problem) and the API
process, which serves everyone else, never holds the inflated data. Only the
summary comes back (never the rows). Where fork is unavailable (not Linux), a
thread does the reading, with the same limits on the file but no memory limit.

The import runner reads the file again, batch by batch, in a process of the same
kind (:class:`registry.imports.checking.JobFeed`): no read of an uploaded file's
content happens in the API process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class ReaderOutOfMemory(Exception):
    """The file needed more memory than the reader process may use."""


def _address_space() -> int:
    """This process's current virtual memory size, in bytes (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[0])
    return pages * os.sysconf("SC_PAGE_SIZE")


def cap_memory(budget: int) -> None:
    """Cap this process's address space at what it holds now plus ``budget`` bytes."""
    # The fork inherited the parent's mappings: the cap is what exists now plus the budget.
    limit = _address_space() + budget
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def fork_available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods() and os.path.exists("/proc/self/statm")


async def run_bounded(
    budget: int, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """``function(*args, **kwargs)`` in a forked process capped at ``budget`` more bytes of
    address space; its exceptions come back as they are, ``MemoryError`` (or the process
    dying) as :class:`ReaderOutOfMemory`."""
    if not fork_available():
        return await asyncio.to_thread(function, *args, **kwargs)
    pool = ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("fork"),
        initializer=cap_memory,
        initargs=(budget,),
    )
    try:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, _call, function, args, kwargs)
    except (MemoryError, BrokenProcessPool) as error:
        raise ReaderOutOfMemory(str(error) or type(error).__name__) from None
    finally:
        await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)


def _call(function: Callable[..., T], args: tuple[object, ...], kwargs: dict[str, object]) -> T:
    return function(*args, **kwargs)
