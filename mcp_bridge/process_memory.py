"""Hand the C allocator's free heap back to the system now and then (glibc `malloc_trim(0)`).

Why: the soak (docs/reliability.md) found a bridge process's resident memory growing about 0.5 MiB
a minute under steady load while everything in use stayed flat: the collector's objects, Python's
own arenas and the bytes malloc had handed out. What grew was glibc's *free* heap. asyncio reads
every socket into a 256 KiB buffer (`_SelectorSocketTransport.max_size`) and shrinks it to what
arrived; glibc's dynamic mmap threshold puts such blocks in the main heap after the first few, and
the holes they leave between longer-lived blocks are never returned on their own (only the top of
the heap is). With a fixed mmap threshold the heap stayed flat, at the price of system calls on
every socket read; trimming instead costs about 0.25 ms once a minute, off the event loop, and
nothing per call.

A process on another C library (musl, macOS, Windows) has no `malloc_trim`: then this does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

_LOGGER = logging.getLogger(__name__)


@dataclass
class TrimStats:
    """What the trimming has done in this process (the soak's line reads it)."""

    every_seconds: float = 0.0
    trims: int = 0
    last_ms: float = 0.0
    longest_ms: float = 0.0


_task: asyncio.Task[None] | None = None
stats = TrimStats()


def allocator_trim() -> Callable[[], object] | None:
    """glibc's `malloc_trim(0)`, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)  # ctypes releases the GIL for the call


def start_trimming(every_seconds: float) -> None:
    """Trim every `every_seconds` (0: never) on this event loop, once per process; idempotent."""
    global _task
    loop = asyncio.get_running_loop()
    if _task is not None and not _task.done() and _task.get_loop() is loop:
        return
    trim = allocator_trim()
    if every_seconds <= 0 or trim is None:
        return
    stats.every_seconds = every_seconds
    _task = loop.create_task(_trim_forever(trim, every_seconds), name="allocator-trim")


async def stop_trimming() -> None:
    global _task
    task, _task = _task, None
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _trim_forever(trim: Callable[[], object], every_seconds: float) -> None:
    while True:
        await asyncio.sleep(every_seconds)
        started = time.perf_counter()
        try:
            # In a thread: the call walks every arena's free lists (milliseconds under load).
            await asyncio.to_thread(trim)
        except RuntimeError:  # the default executor is shut down: the loop is ending
            return
        took = (time.perf_counter() - started) * 1000
        stats.trims += 1
        stats.last_ms = took
        stats.longest_ms = max(stats.longest_ms, took)
        _LOGGER.debug("Allocator trimmed in %.2f ms", took)
