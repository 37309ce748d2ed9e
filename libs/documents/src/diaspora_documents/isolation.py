"""Run a parser of untrusted bytes in a process of its own, with memory and CPU limits.

A crafted PDF can make its parser walk millions of objects; an image header can
promise a bomb. The structure of an upload is read (:func:`diaspora_documents.checks.inspect_file`)
in a process forked for it: its address space may grow by at most ``memory`` bytes
beyond what it inherited (``RLIMIT_AS``), its CPU time is capped (``RLIMIT_CPU``) and
the parent kills it after a wall-clock deadline. Only the small result comes back
through a pipe. The service process, which serves everyone else, never holds what the
parser inflates. Where fork is unavailable (not Linux), a thread runs it with no
memory limit.

The same idea as the registry's import reader (``registry.imports.bounded``), with a
CPU and wall-clock limit added; written here for documents, not shared with it yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import resource
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

T = TypeVar("T")


class LimitExceeded(Exception):
    """The parser needed more memory or time than it may use."""


def fork_available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods() and os.path.exists("/proc/self/statm")


def _address_space() -> int:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[0])
    return pages * os.sysconf("SC_PAGE_SIZE")


def _child(
    sender: Connection,
    function: Callable[..., Any],
    args: tuple[Any, ...],
    memory: int,
    cpu_seconds: int,
) -> None:
    # The fork copied the parent's signal handling, including the asyncio loop's wakeup
    # fd: a signal here (SIGXCPU) would wake the parent's loop. The parent stops us.
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    limit = _address_space() + memory
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    used = int(resource.getrusage(resource.RUSAGE_SELF).ru_utime)
    resource.setrlimit(resource.RLIMIT_CPU, (used + cpu_seconds, used + cpu_seconds + 1))
    try:
        outcome: tuple[str, Any] = ("ok", function(*args))
    except MemoryError:
        outcome = ("limit", "memory")
    except Exception as error:
        outcome = ("error", error)
    try:
        sender.send(outcome)
    except Exception as error:  # an unpicklable exception: its text
        sender.send(("error", RuntimeError(f"{type(error).__name__}: {error}")))
    finally:
        sender.close()


async def run_isolated(function: Callable[..., T], *args: Any, memory: int, seconds: float) -> T:
    """``function(*args)`` in a forked process (see the module): its result, or its
    exception raised here; :class:`LimitExceeded` when it ran out of memory or time, or
    died. ``function``, ``args`` and the result stay in memory (nothing of the call is
    pickled, only the result and exceptions)."""
    if not fork_available():
        return await asyncio.wait_for(asyncio.to_thread(function, *args), timeout=seconds)
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_child,
        args=(sender, function, args, memory, max(1, int(seconds))),
        daemon=True,
        name="untrusted-parser",
    )
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    process.start()
    sender.close()

    def answered() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(receiver.fileno(), answered)
    try:
        try:
            await asyncio.wait_for(ready, timeout=seconds * 2 + 1)
        except TimeoutError:
            raise LimitExceeded("time") from None
        try:
            status, value = receiver.recv()
        except (EOFError, OSError):
            # The process died without answering: SIGXCPU (CPU limit), or SIGKILL.
            raise LimitExceeded("time or memory") from None
    finally:
        loop.remove_reader(receiver.fileno())
        receiver.close()
        if process.is_alive():
            process.kill()
        await asyncio.to_thread(process.join, 5)
        with contextlib.suppress(ValueError):
            process.close()
    if status == "ok":
        result: T = value
        return result
    if status == "limit":
        raise LimitExceeded(str(value))
    raise value
