"""What a long run watches in its own process: resident memory, open file descriptors, live tasks.

Read from /proc (Linux), so a sample costs microseconds and needs no dependency. A sample taken
while calls are in flight counts their tasks and sockets too; `Meter.quiet_sample` is meant to be
taken with the load paused, so two quiet samples compare like with like.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    at: float
    """Seconds since the meter started."""
    rss_mib: float
    fds: int
    tasks: int
    objects: int = 0
    """Objects the garbage collector tracks (containers); counted in quiet samples only."""
    heap_in_use_mib: float = 0.0
    """What the C allocator has handed out and not had back (glibc `mallinfo2`), quiet samples only."""
    heap_free_mib: float = 0.0
    """Free memory the C allocator holds in its heaps: resident unless trimmed."""


def rss_mib() -> float:
    """Resident set size of this process, MiB (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")
    ]  # fmt: skip


def c_heap_mib() -> tuple[float, float]:
    """(in use, free) in the C allocator's heaps, MiB; (0, 0) where glibc's `mallinfo2` is missing."""
    try:
        mallinfo2 = ctypes.CDLL(ctypes.util.find_library("c")).mallinfo2
    except (OSError, AttributeError, TypeError):
        return 0.0, 0.0
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return (info.uordblks + info.hblkhd) / 2**20, info.fordblks / 2**20


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, for the record next to any figure the load can move."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}/{five:.2f}/{fifteen:.2f}"


@dataclass
class Meter:
    started: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)

    def sample(self) -> Sample:
        taken = Sample(
            at=time.monotonic() - self.started,
            rss_mib=rss_mib(),
            fds=open_fds(),
            tasks=len(asyncio.all_tasks()),
        )
        self.samples.append(taken)
        return taken

    def quiet_sample(self) -> tuple[Sample, Counter[str]]:
        """A sample with the collector's objects counted by type (tens of milliseconds)."""
        kinds = Counter(type(item).__qualname__ for item in gc.get_objects())
        in_use, free = c_heap_mib()
        taken = Sample(
            at=time.monotonic() - self.started,
            rss_mib=rss_mib(),
            fds=open_fds(),
            tasks=len(asyncio.all_tasks()),
            objects=sum(kinds.values()),
            heap_in_use_mib=in_use,
            heap_free_mib=free,
        )
        self.samples.append(taken)
        return taken, kinds

    def after(self, seconds: float) -> list[Sample]:
        return [sample for sample in self.samples if sample.at >= seconds]
